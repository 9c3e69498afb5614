"""Tests against a real Home Assistant process and a real browser."""
