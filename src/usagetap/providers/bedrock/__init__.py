"""AWS Bedrock Runtime through boto3 (``bedrock-runtime`` clients): Converse and InvokeModel."""
