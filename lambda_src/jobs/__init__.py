"""Job processing: the shared domain code of the api and worker Lambdas."""
