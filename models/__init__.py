"""ganserve models: configs, datasets, networks and evaluation (torch-free where the API imports them)."""
