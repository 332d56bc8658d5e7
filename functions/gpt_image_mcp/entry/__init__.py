"""AWS Lambda entry points. `lambda_mcp.handler` serves MCP behind API Gateway (HTTP API, payload 2.0).

Importing these modules is cheap on purpose: the MCP SDK, boto3 and the OpenAI SDK load on the first invocation.
"""
