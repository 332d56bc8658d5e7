"""The AWS platform's numbers the functions are built around, in one place (cheap to import: no dependencies)."""

API_BUDGET_SECONDS = 30  # API Gateway HTTP API's integration timeout (not raisable)
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous request payload limit
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response payload limit
LINK_EXPIRY_MAX = 604_800  # S3's limit for SigV4 presigned URLs: 7 days
MAX_VISIBILITY_SECONDS = 900  # the longest backoff the worker sets on a message (SQS allows 12 h)
MAX_RECEIVE_DEFAULT = 5  # template.yaml: JobsQueue RedrivePolicy.maxReceiveCount
