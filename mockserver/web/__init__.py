"""The web layer: the only Starlette code, plus request validation from the spec."""
