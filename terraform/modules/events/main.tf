# STAND-IN (issue 11, webhooks branch): only the custom bus the webhooks rule listens on.
# The events branch replaces this module with the real one (bus, stream publisher, SNS topic
# for operators); keep its inputs and the outputs bus_name / bus_arn when merging.

resource "aws_cloudwatch_event_bus" "jobs" {
  name = "${var.name_prefix}-events"
}
