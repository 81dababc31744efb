"""The stateful mock of the Morpheus API Gateway session API."""
