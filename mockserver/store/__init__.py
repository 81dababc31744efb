"""Storage: the store errors (root `StoreError`), the per-request `View`, the assembly, and `redis/`.

The interfaces the domain's services depend on (`SessionStore`, `Slots`, `Counter`, `JournalLog`,
`Clock`) and their in-memory implementations stay in `mockserver.domain`, which may import nothing
outside itself; this package adds what only a shared store needs.
"""

from mockserver.store.errors import StoreBusy, StoreError, StoreUnavailable
from mockserver.store.view import LocalView, View

__all__ = ["LocalView", "StoreBusy", "StoreError", "StoreUnavailable", "View"]
