"""The served mock under hostile input, load, races and shutdown; and its security promises."""
