"""Create the receipt plumbing idempotently: SES configuration set → SNS topics → SQS queues (+ DLQs) (DESIGN §2.5).

`notify dev` runs it against the embedded moto; real AWS is set up by infrastructure code (docs/aws-setup.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from notify import aws
from notify.receipts.service import dead_letter_name
from notify.settings import AwsSettings

log = structlog.get_logger(__name__)

DEFAULT_CONFIGURATION_SET = "notify"
# Which SES events go to which topic.
BOUNCE_EVENTS = ["BOUNCE", "COMPLAINT", "REJECT"]
DELIVERY_EVENTS = ["DELIVERY"]


@dataclass(frozen=True, slots=True)
class ReceiptQueues:
    """The URLs of the queues the pollers read."""

    bounces: str
    deliveries: str
    sms: str


async def ensure_receipt_wiring(settings: AwsSettings) -> ReceiptQueues:
    """Create (or find) the configuration set, topics, queues, subscriptions and event destinations."""
    session = aws.create_session(settings)
    kwargs = aws.client_kwargs(settings)
    async with (
        session.client("sesv2", **kwargs) as ses,
        session.client("sns", **kwargs) as sns,
        session.client("sqs", **kwargs) as sqs,
    ):
        configuration_set = settings.ses_configuration_set or DEFAULT_CONFIGURATION_SET
        await _ensure_configuration_set(ses, configuration_set)
        queues = {}
        for key, topic_name, queue_name in (
            ("bounces", settings.ses_bounce_topic, settings.bounce_queue),
            ("deliveries", settings.ses_delivery_topic, settings.delivery_queue),
            ("sms", settings.sms_receipt_topic, settings.sms_receipt_queue),
        ):
            topic_arn = (await sns.create_topic(Name=topic_name))["TopicArn"]
            queue_url = await _ensure_queue(sqs, queue_name, topic_arn, settings)
            queue_arn = await _queue_arn(sqs, queue_url)
            await sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            queues[key] = queue_url
            if key == "bounces":
                await _ensure_event_destination(ses, configuration_set, "bounces", topic_arn, BOUNCE_EVENTS)
            elif key == "deliveries":
                await _ensure_event_destination(ses, configuration_set, "deliveries", topic_arn, DELIVERY_EVENTS)
    log.info("notify.receipts.wiring_ready", configuration_set=configuration_set, queues=list(queues.values()))
    return ReceiptQueues(**queues)


async def _ensure_configuration_set(ses: Any, name: str) -> None:
    try:
        await ses.create_configuration_set(ConfigurationSetName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "AlreadyExistsException",
            "ConfigurationSetAlreadyExistsException",
        ):
            raise


async def _ensure_queue(sqs: Any, name: str, topic_arn: str, settings: AwsSettings) -> str:
    """Create the queue with its DLQ and redrive policy; CreateQueue is idempotent for equal attributes."""
    dlq_url = (
        await sqs.create_queue(QueueName=dead_letter_name(name), Attributes={"MessageRetentionPeriod": "1209600"})
    )["QueueUrl"]
    dlq_arn = await _queue_arn(sqs, dlq_url)
    queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    queue_arn = await _queue_arn(sqs, queue_url)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    # Set separately: a second CreateQueue with different attributes would fail with QueueAlreadyExists.
    await sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "MessageRetentionPeriod": "1209600",
            "VisibilityTimeout": str(settings.receipt_visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.receipt_max_receive_count)}
            ),
            "Policy": json.dumps(policy),
        },
    )
    return str(queue_url)


async def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


async def _ensure_event_destination(
    ses: Any, configuration_set: str, name: str, topic_arn: str, events: list[str]
) -> None:
    destination = {"Enabled": True, "MatchingEventTypes": events, "SnsDestination": {"TopicArn": topic_arn}}
    try:
        await ses.create_configuration_set_event_destination(
            ConfigurationSetName=configuration_set, EventDestinationName=name, EventDestination=destination
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("AlreadyExistsException", "AlreadyExists"):
            await ses.update_configuration_set_event_destination(
                ConfigurationSetName=configuration_set, EventDestinationName=name, EventDestination=destination
            )
        elif code in ("NotImplemented", "404", "501"):
            # moto does not implement SES v2 event destinations (it answers 404); the queues still work.
            log.warning("notify.receipts.event_destination_unsupported", configuration_set=configuration_set)
        else:
            raise
