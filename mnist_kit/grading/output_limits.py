"""Keep what a notebook prints from filling the grader's memory.

Three bounds, outermost first: zmq refuses kernel messages over MESSAGE_LIMIT_MB and queues at
most QUEUE_MESSAGES for the grader (`bound_messages`); the notebook client keeps at most
OUTPUT_LIMIT_MB of outputs (`capped_client_class`); and OUTPUT_CAP_CODE, run in the kernel
first, stops forwarding stdout and stderr after OUTPUT_LIMIT_MB and says so once.
"""

from __future__ import annotations

__all__ = [
    "OUTPUT_LIMIT_MB",
    "CUT_MARK",
    "OUTPUT_CAP_CODE",
    "capped_client_class",
    "bound_messages",
    "message_size",
]

OUTPUT_LIMIT_MB = 20  # printed/displayed output kept per notebook; the rest is dropped unread
MESSAGE_LIMIT_MB = 32  # larger kernel messages are refused by zmq before they reach the grader
QUEUE_MESSAGES = 32  # messages zmq may queue for the grader (with the size limit: bounded memory)
CUT_MARK = "[mnist-kit: output cut at"
# Run in the kernel first: stdout/stderr stop forwarding after OUTPUT_LIMIT_MB and say so once.
# (A courtesy for the ordinary flood of prints; the zmq limits above bound the grader regardless.)
OUTPUT_CAP_CODE = f"""
def _mnist_kit_cap_output(limit={OUTPUT_LIMIT_MB} * 2**20):
    import sys
    for stream in (sys.stdout, sys.stderr):
        write, sent = stream.write, [0]
        def capped(text, write=write, sent=sent, stream=stream):
            sent[0] += len(text)
            if sent[0] <= limit:
                return write(text)
            if sent[0] - len(text) <= limit:
                stream.flush()
                write("\\n{CUT_MARK} {OUTPUT_LIMIT_MB} MB]\\n")
                stream.flush()
            return len(text)
        stream.write = capped
_mnist_kit_cap_output()
del _mnist_kit_cap_output
"""


def capped_client_class():
    """A NotebookClient that keeps at most OUTPUT_LIMIT_MB of outputs, so a flood of prints
    cannot fill the grader's memory (errors are always kept: the grader reports them)."""
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        output_limit = OUTPUT_LIMIT_MB * 2**20
        output_bytes = 0
        output_cut = False

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] != "error":
                if msg["msg_type"] == "stream" and CUT_MARK in msg["content"].get("text", ""):
                    self.output_cut = True
                self.output_bytes += message_size(msg["content"])
                if self.output_bytes > self.output_limit:
                    self.output_cut = True
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def message_size(content) -> int:
    """Bytes of text in one output message (stream text, or the values of a display's data)."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, dict):
        return sum(message_size(v) for v in content.values())
    if isinstance(content, (list, tuple)):
        return sum(message_size(v) for v in content)
    return 8


def bound_messages(manager) -> None:
    """Make the clients of `manager` refuse huge messages and queue few (zmq's own limits)."""
    import zmq

    make_client = manager.client

    def client(**kwargs):
        kc = make_client(**kwargs)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT_MB * 2**20)  # default for its sockets
        kc.context.setsockopt(zmq.RCVHWM, QUEUE_MESSAGES)
        return kc

    manager.client = client
