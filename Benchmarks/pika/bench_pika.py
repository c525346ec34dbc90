"""The same measurement as `fog-bench clients`, made with Python's pika, for comparison.

Publishes N persistent messages with publisher confirms, keeping at most WINDOW unconfirmed,
to a quorum queue; then consumes them all with a prefetch, acking each. Prints one JSON line.
"""
import argparse
import json
import time

import pika


def parameters(url):
    return pika.URLParameters(url.split(",")[0])


def publish(url, queue, count, size, window):
    body = b"x" * size
    state = {"sent": 0, "confirmed": 0, "nacked": 0, "start": None, "end": None}

    def on_channel(channel):
        channel.confirm_delivery(on_confirm)
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"},
                              callback=lambda _frame: channel.queue_purge(queue, callback=lambda _f: start(channel)))

    def start(channel):
        state["start"] = time.monotonic()
        fill(channel)

    def fill(channel):
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        while state["sent"] < count and state["sent"] - state["confirmed"] - state["nacked"] < window:
            channel.basic_publish("", queue, body, properties)
            state["sent"] += 1

    def on_confirm(frame):
        method = frame.method
        tag = method.delivery_tag
        done = tag - (state["confirmed"] + state["nacked"]) if method.multiple else 1
        if isinstance(method, pika.spec.Basic.Ack):
            state["confirmed"] += done
        else:
            state["nacked"] += done
        channel = frame_channel[0]
        if state["confirmed"] + state["nacked"] >= count:
            state["end"] = time.monotonic()
            connection.close()
        else:
            fill(channel)

    frame_channel = []

    def remember_channel(channel):
        frame_channel.append(channel)
        on_channel(channel)

    connection = pika.SelectConnection(
        parameters(url),
        on_open_callback=lambda c: c.channel(on_open_callback=remember_channel),
        on_open_error_callback=lambda c, error: (c.ioloop.stop(), state.update(error=error)),
        on_close_callback=lambda c, reason: c.ioloop.stop())
    connection.ioloop.start()
    if state.get("error") or state["end"] is None:
        raise SystemExit(f"pika publisher failed: {state.get('error')}")
    if state["nacked"]:
        raise SystemExit(f"{state['nacked']} publishes were nacked")
    return count / (state["end"] - state["start"])


def consume(url, queue, count, prefetch):
    connection = pika.BlockingConnection(parameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    received = 0
    start = time.monotonic()
    for method, _properties, _body in channel.consume(queue, auto_ack=False):
        channel.basic_ack(method.delivery_tag)
        received += 1
        if received == count:
            break
    elapsed = time.monotonic() - start
    channel.cancel()
    connection.close()
    return received / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--queue", default="fog.bench.pika")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--prefetch", type=int, default=500)
    args = parser.parse_args()
    publish_rate = publish(args.broker_url, args.queue, args.messages, args.size, args.window)
    consume_rate = consume(args.broker_url, args.queue, args.messages, args.prefetch)
    print(json.dumps({
        "client": "python-pika " + pika.__version__, "messages": args.messages, "size": args.size,
        "window": args.window, "prefetch": args.prefetch,
        "publish_per_s": round(publish_rate), "consume_per_s": round(consume_rate),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
