"""The shared state in Redis (`--store redis://`), so several mock workers and hosts behave as one gateway.

Its modules import one another in one order, never back: `wire` (the connection, the names,
`answering`: every redis-py failure leaves as a `StoreError`) <- `transaction` (`swap`, `optimistic`)
and `view` (`RedisView`) <- `store`, `clock`, `slots`, `journal`; `codecs` (JSON, no Redis) is read by
those four. Nothing but `mockserver.store.assembly` imports this package, and only for a Redis URL.
"""
