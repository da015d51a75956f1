"""Field feeds: replay, Vrain-style poller, SensorThings/MQTT subscriber, simulators.

Every adapter delivers batches to a synchronous sink (see sensors.sink):

    sink(events: list[Event], rejections: list[Rejection]) -> None
"""
