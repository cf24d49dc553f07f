"""What the worker processes of one server share: their private state folder (readiness, metrics files) and the
control channel from each worker to the supervisor that started them (reload broadcast)."""
