"""Batching: a pure planner (which items go next) and the engine thread that runs the forward passes."""
