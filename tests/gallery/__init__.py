"""A gallery of broken gateways, and the mutation run that proves the contract suite catches each."""
