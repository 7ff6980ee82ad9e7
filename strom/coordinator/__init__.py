"""Coordinators: the classic consumer-group coordinator (`group`) and the transaction coordinator (`txn`)."""
