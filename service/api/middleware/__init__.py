"""Pure-ASGI layers that every HTTP request passes once: request metrics, the drain gate, the body limits."""
