"""Batching: a pure planner (which items go next) and the worker thread that runs the forward passes."""
