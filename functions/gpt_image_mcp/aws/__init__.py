"""AWS adapters for the remote (serverless) mode: S3 image store, DynamoDB history, API keys, bearer auth.

These modules implement the core's storage interfaces (`gpt_image_mcp.core.storage`) on boto3 and verify bearer tokens
for the MCP SDK. Only the Lambda entry points and `local_sandbox` import this package; `gpt_image_mcp.core` never does,
so the local mode runs without boto3 installed. boto3 is imported lazily (in `clients`) for the same reason.
"""
