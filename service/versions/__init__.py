"""The model registry's bookkeeping: which version a request means (a number or an alias), version numbers,
aliases, model cards and retiring a version. Plain code over the database; the routes are service/api/models.py.
"""
