"""Scale-out: the encode stream of a run sharded over worker processes (one per device) or Ray actors."""
