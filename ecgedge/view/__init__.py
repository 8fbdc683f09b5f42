"""The bedside view: a live page served by the bridge (``ecgedge bridge --http``).

:mod:`.feed` gathers what the page shows on the hub's side (numpy and the bridge's event types, never
blocking the hub);
:mod:`.server` serves it with aiohttp (the ``[view]`` extra); ``static/`` holds the page, its script
and its style, shipped in the package (no CDN: the device may have no internet).
"""
