"""Development stand-ins: what lets the whole product run and be tested on one machine, with nothing leaving it.

They speak the real wire protocols and are driven by the real clients (the `openai` SDK, boto3, the MCP SDK);
nothing here is deployed or imported by `functions/`.

    emulator/          an OpenAI-compatible images API on loopback (`gpt-image-emulator`, `gpt-image-mcp --emulator`)
    aws_resources.py   the template's bucket, queues and tables, created in moto's server
    api_gateway.py     API Gateway's HTTP API in front of a Lambda handler (payload 2.0 events, warm container)
    lambda_context.py  the context object Lambda passes to a handler
    sqs_driver.py      Lambda's SQS event source mapping: poll the queue, invoke the worker
    moto_server.py     moto's server for S3, SQS and DynamoDB, with DynamoDB's atomic conditional writes
    remote_shape.py    all of the above as the remote deployment on loopback (`gpt-image-mcp-remote`)
"""
