"""One router per resource; routes stay thin and call plain functions."""
