"""The local Lambda runtime: runs what Terraform deployed to the embedded backend (moto), no Docker.

moto stores Lambda functions, REST APIs and event source mappings but does not run them. This
package reads the deployment back through the AWS APIs on the backend and runs it:

- functions (handler, environment, timeout, memory, reserved concurrency, ``CodeSha256``) from
  the Lambda API; the code is the zip in ``zip_dir`` (default ``build/``) whose hash equals the
  deployed ``CodeSha256`` (moto's ``Code.Location`` points at real AWS). Each function runs in
  worker processes, one per execution environment: cold start, warm reuse, timeout enforced,
  bounded concurrency, logs to the console (``[name] ...``) and to CloudWatch Logs on the
  backend (``/aws/lambda/<name>``);
- the REST API (resources, methods, Cognito authorizer, MOCK/AWS_PROXY integrations, stages,
  gateway responses) from the API Gateway API, served on ``http://127.0.0.1:PORT/<stage>/...``
  (loopback only: moto's token signing key is public);
- SQS event source mappings (batch size, batching window, ReportBatchItemFailures, maximum
  concurrency) from the Lambda API, one poller each.

It re-reads the deployment every ``refresh_interval`` seconds, so a redeploy while it runs
takes effect (an unchanged one changes nothing). See docs/local-runtime.md for what is and is
not emulated.

Use::

    from tooling.embedded_backend import EmbeddedBackend
    from tooling.local_runtime import LocalRuntime

    with EmbeddedBackend() as backend:          # ... terraform apply against backend.endpoint ...
        with LocalRuntime(backend.endpoint, zip_dir="build") as runtime:
            print(runtime.base_url)              # http://127.0.0.1:PORT/<stage>
            result = runtime.invoke("fn-name", {"some": "event"})   # direct invoke, optional

``LocalRuntime(endpoint, *, region="us-east-1", zip_dir=build/, rest_api=None (the only REST
API; or its id or name), stage=None (first stage), port=0 (free port), default_concurrency=8,
refresh_interval=2.0 (None: never), console=print_console (None: silent), access_log=True)``.
``start()`` raises ``LocalRuntimeError`` (e.g. ``CodeNotFoundError``: the deployed code is not
in ``zip_dir``; run ``invoke package`` then ``invoke deploy``) with a message saying what to do.
``stop()`` (or leaving the ``with``) stops every process and thread it started.

From a shell: ``python -m tooling.local_runtime --endpoint http://127.0.0.1:PORT`` runs it in the
foreground until Ctrl-C.
"""

from __future__ import annotations

from tooling.local_runtime.errors import CodeNotFoundError, LocalRuntimeError
from tooling.local_runtime.functions import InvocationResult
from tooling.local_runtime.runtime import LocalRuntime

__all__ = ["CodeNotFoundError", "InvocationResult", "LocalRuntime", "LocalRuntimeError"]
