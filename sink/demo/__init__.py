"""Demo traffic: realistic Open edX events published to Kafka exactly as Open edX does.

:mod:`.traffic` generates a deterministic, coherent story of events (the sink's own payload
classes); :mod:`.wire` turns them into Kafka messages in the openedx-events wire format;
:mod:`.produce` publishes them; :mod:`.command` is ``sink demo produce``.
"""
