"""Reusable widgets: chat view, message bubbles, heatmap, probability bars."""
