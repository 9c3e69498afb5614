"""Tests of the Telzino integration."""
