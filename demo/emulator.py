"""A local AWS emulator for `cdk deploy`: moto's server, with the CloudFormation gaps our stack hits filled in.

moto 5.2.5 (pinned) reports CREATE_COMPLETE but silently skips AWS::CloudWatch::Alarm and
AWS::SNS::Subscription, drops AWS::SQS::QueuePolicy, a function's Layers, a table's TTL and PITR, and
cannot update a stack whose template has CDK's BootstrapVersion parameter. The patches below make it
create what the template says, so the demo shows the stack as deployed. moto does not implement CloudTrail's
LookupEvents either: it is answered with an error (see _lookup_events_unsupported). The hub of `make demo-accounts`
adds a bus policy, AWS::Events::EventBusPolicy, which moto's CloudFormation also skips. They must be applied before the
first CloudFormation request: moto caches its resource-type registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaFunction, LayerVersion, lambda_backends
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.parsing import get_model_map
from moto.cloudtrail.responses import CloudTrailResponse
from moto.cloudwatch.models import Dimension, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.cloudwatch.models import Metric as CloudWatchMetric
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.events.models import events_backends
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

Json = dict[str, Any]


class _AddedResource:
    """What moto's CloudFormation engine needs of a resource: an id, an Arn attribute, delete()."""

    def __init__(self, physical_resource_id: str, deleter: Callable[[], Any] = lambda: None, arn: str = "") -> None:
        self.physical_resource_id = physical_resource_id
        self._deleter = deleter
        self.arn = arn or physical_resource_id

    def delete(self, account_id: str, region_name: str) -> None:
        self._deleter()

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attr: str) -> str:
        return self.arn

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[no-untyped-def]
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(  # type: ignore[attr-defined]
            new_resource_name, cloudformation_json, account_id, region_name
        )


def _metric_data_queries(properties: Json) -> list[MetricDataQuery] | None:
    """A metric-math alarm's `Metrics`, built as moto's own PutMetricAlarm handler builds them (None without)."""
    if not properties.get("Metrics"):
        return None
    queries = []
    for query in properties["Metrics"]:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=CloudWatchMetric(
                    metric_name=metric["MetricName"],
                    namespace=metric.get("Namespace"),
                    dimensions=[Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData"),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


# CloudFormationModel must be a direct base (moto walks its __subclasses__), and moto's model tracker
# wants a "moto.<service>" module name.
class CfnAlarm(_AddedResource, CloudFormationModel):
    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnAlarm:
        p = cloudformation_json["Properties"]
        name = p.get("AlarmName", resource_name)
        backend = cloudwatch_backends[account_id][region_name]
        alarm = backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            # A metric-math alarm names no MetricName: its Metrics hold the expression and its inputs.
            metric_data_queries=_metric_data_queries(p),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0.0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(name, lambda: backend.delete_alarms([name]), arn=alarm.alarm_arn)


class CfnSubscription(_AddedResource, CloudFormationModel):
    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnSubscription:
        p = cloudformation_json["Properties"]
        backend = sns_backends[account_id][p["TopicArn"].split(":")[3]]
        subscription = backend.subscribe(p["TopicArn"], p["Endpoint"], p["Protocol"])
        for attribute in ("FilterPolicyScope", "FilterPolicy", "RawMessageDelivery", "RedrivePolicy"):
            if attribute in p:
                value = p[attribute]
                backend.set_subscription_attributes(
                    subscription.arn, attribute, value if isinstance(value, str) else json.dumps(value)
                )
        return cls(subscription.arn, lambda: backend.unsubscribe(subscription.arn))


class CfnQueuePolicy(_AddedResource, CloudFormationModel):
    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnQueuePolicy:
        p = cloudformation_json["Properties"]
        backend = sqs_backends[account_id][region_name]
        for url in p["Queues"]:
            backend.set_queue_attributes(url.rstrip("/").split("/")[-1], {"Policy": json.dumps(p["PolicyDocument"])})
        return cls(resource_name)


class CfnTopicPolicy(_AddedResource, CloudFormationModel):
    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnTopicPolicy:
        p = cloudformation_json["Properties"]
        for topic in p["Topics"]:
            backend = sns_backends[account_id][topic.split(":")[3]]
            backend.set_topic_attribute(topic, "policy", json.dumps(p["PolicyDocument"]))
        return cls(f"{resource_name}-policy")


class CfnEventInvokeConfig(_AddedResource, CloudFormationModel):
    """A function's asynchronous-invocation settings: retry attempts, event age, destinations."""

    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnEventInvokeConfig:
        p = cloudformation_json["Properties"]
        backend = lambda_backends[account_id][region_name]
        config = {k: p[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig") if k in p}
        backend.put_function_event_invoke_config(p["FunctionName"], config)
        return cls(f"{p['FunctionName']}-event-invoke-config")


class CfnEventBusPolicy(_AddedResource, CloudFormationModel):
    """A statement in an event bus's resource policy (the hub's bus admitting its member accounts): moto 5.2.5's
    CloudFormation skips AWS::Events::EventBusPolicy. Applied as PutPermission with a policy applies it, so that
    DescribeEventBus shows it. (moto does not enforce bus policies on cross-account delivery either.)"""

    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Events::EventBusPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnEventBusPolicy:
        p = cloudformation_json["Properties"]
        bus = events_backends[account_id][region_name].describe_event_bus(p.get("EventBusName", "default"))
        statement = {"Sid": p["StatementId"], **p["Statement"]}
        bus.add_policy({"Statement": [statement]})
        return cls(f"{bus.name}-{p['StatementId']}", lambda: bus.remove_statement(p["StatementId"]))


class CfnBucketPolicy(_AddedResource, CloudFormationModel):
    """Accepted, not applied: `cdk bootstrap`'s assets bucket policy denies requests without TLS, and
    moto would enforce that against the emulator's plain-HTTP endpoint, refusing every asset upload."""

    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnBucketPolicy:
        return cls(f"{cloudformation_json['Properties']['Bucket']}-policy")


class CfnCdkMetadata(_AddedResource, CloudFormationModel):
    __module__ = "moto.kinesis_remediator_demo"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CDK::Metadata"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **_: Any
    ) -> CfnCdkMetadata:
        return cls(resource_name)


def _wrap(model: Any, fixup: Callable[[Any, Json, str, str], None], pre: Callable[[Json], None]) -> None:
    """Run pre(properties) before and fixup(resource, properties, account, region) after moto's create/update."""
    create = model.create_from_cloudformation_json.__func__

    def create_wrapped(cls, resource_name, cloudformation_json, account_id, region_name, **kw):  # type: ignore[no-untyped-def]
        pre(cloudformation_json.get("Properties", {}))
        resource = create(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        fixup(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
        return resource

    model.create_from_cloudformation_json = classmethod(create_wrapped)
    if not hasattr(model.update_from_cloudformation_json, "__isabstractmethod__"):
        update = model.update_from_cloudformation_json.__func__

        def update_wrapped(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def]
            pre(cloudformation_json.get("Properties", {}))
            resource = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
            fixup(resource, cloudformation_json.get("Properties", {}), account_id, region_name)
            return resource

        model.update_from_cloudformation_json = classmethod(update_wrapped)


def _layer_arns(properties: Json) -> None:
    # A Ref to a LayerVersion resolves to moto's object, which has no physical id of its own.
    if properties.get("Layers"):
        properties["Layers"] = [getattr(layer, "arn", layer) for layer in properties["Layers"]]


def _attach_layers(function: Any, properties: Json, account: str, region: str) -> None:
    if properties.get("Layers") and [x["Arn"] for x in function.layers] != properties["Layers"]:
        function.update_configuration({"Layers": properties["Layers"]})


def _apply_table_settings(table: Any, properties: Json, account: str, region: str) -> None:
    backend = dynamodb_backends[account][region]
    if "TimeToLiveSpecification" in properties:
        backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
    pitr = properties.get("PointInTimeRecoverySpecification") or {}
    if str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
        backend.update_continuous_backups(table.name, {"PointInTimeRecoveryEnabled": True})


def _nothing(properties: Json) -> None:
    return None


_original_resolve = CloudFormationBackend._resolve_update_parameters


def _resolve_update_parameters(self: Any, instance: Any, incoming_params: list[Json]) -> Any:
    # CDK's UpdateStack passes UsePreviousValue for BootstrapVersion, which the stack took from its
    # template default; moto then fails with a KeyError. The template default is the right value.
    kept = [
        p for p in incoming_params if not (p.get("UsePreviousValue") and p["ParameterKey"] not in instance.parameters)
    ]
    return _original_resolve(self, instance, kept)


def _publish_layer_version(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def]
    # A layer is immutable: CloudFormation replaces it by publishing a new version.
    return cls.create_from_cloudformation_json(original_resource.name, cloudformation_json, account_id, region_name)


def _delete_layer_version(self: Any, account_id: str, region_name: str) -> None:
    lambda_backends[account_id][region_name].delete_layer_version(self.name, self.version)


def _lookup_events_unsupported(self: Any) -> Any:
    """moto 5.2.5 does not implement CloudTrail's LookupEvents and answers 500, which a reading client retries for
    seconds. Answered here as AWS answers a refused read (HTTP 400, not retried): the remediator then counts a
    stream's daily scalings from its own audit, and its plans say so."""
    raise JsonRESTError("UnsupportedOperationException", "the emulator (moto) does not implement LookupEvents")


def install_patches() -> None:
    if getattr(CloudFormationBackend, "_kinesis_remediator_patched", False):
        return
    CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters  # type: ignore[method-assign]
    LayerVersion.update_from_cloudformation_json = classmethod(_publish_layer_version)  # type: ignore[method-assign, assignment]
    LayerVersion.delete = _delete_layer_version  # type: ignore[attr-defined]
    _wrap(LambdaFunction, _attach_layers, pre=_layer_arns)
    _wrap(Table, _apply_table_settings, pre=_nothing)
    CloudFormationBackend._kinesis_remediator_patched = True  # type: ignore[attr-defined]
    if "AWS::CloudWatch::Alarm" not in get_model_map():
        raise RuntimeError("moto's CloudFormation registry was built before the demo's patches")


class Emulator:
    """moto's server on 127.0.0.1 and a free port, in this process; stops with the context."""

    def __init__(self) -> None:
        install_patches()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log in the demo's output
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def __enter__(self) -> Emulator:
        # Only while this emulator runs: moto's classes are shared with any in-process moto (the tests), where
        # LookupEvents must stay as moto has it.
        self._lookup_events = CloudTrailResponse.__dict__.get("lookup_events")
        CloudTrailResponse.lookup_events = _lookup_events_unsupported  # type: ignore[attr-defined]
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.port = port
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        if self._lookup_events is None:
            del CloudTrailResponse.lookup_events  # type: ignore[attr-defined]
        else:
            CloudTrailResponse.lookup_events = self._lookup_events  # type: ignore[attr-defined]

    def environment(self) -> dict[str, str]:
        """What a boto3 client or the CDK CLI needs to talk to this emulator, and never to AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            # The CDK CLI builds TemplateURL from this; moto parses path-style bucket URLs only on "localhost".
            "AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION": f"http://localhost:{self.port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
