"""Reports over the warehouse: the reporting views, ``sink report`` and the HTML page."""
