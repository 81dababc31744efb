"""The shared state in Redis (`--store redis://`), so several mock workers and hosts behave as one gateway.

Everything here is asynchronous (redis-py's asyncio connections, hiredis parsing): a worker's event loop
never waits on Redis. Its modules import one another in one order, never back: `wire` (the connection,
the names, `answering`: every failure leaves as a `StoreError`) <- `transaction` (`swap`) <- `view`
(`RedisView`, the admin hash's snapshot) <- `store`, `clock`, `slots`, `journal`; `codecs` (JSON, no
Redis) is read by those four. Nothing but `mockserver.store.assembly` imports this package, and only
for a Redis URL.
"""
