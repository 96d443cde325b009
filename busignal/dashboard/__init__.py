"""``busignal dashboard``: a small web page over the inspection data API.

Needs the ``dashboard`` extra (Starlette and uvicorn). The page and its
script and style ship in this package: nothing is loaded from elsewhere.
"""
