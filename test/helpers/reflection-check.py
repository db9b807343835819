"""A second strict runtime for server reflection: Debian's python3-grpcio and
python3-protobuf (whose C++ descriptor pool, like Go's and upb's, refuses a
file whose imports or types do not resolve).

Usage: reflection-check.py HOST:PORT < {"reflection": base64 FileDescriptorSet of
grpc/reflection/v1/reflection.proto}. It discovers every served file through
reflection alone, loads them into a fresh pool, calls a few rpcs of every
service with types from that pool, and prints one JSON object of what it saw.
"""

import base64
import json
import sys
import uuid

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.internal import api_implementation

TIMEOUT_S = 10


def message_classes(pool):
    factory = message_factory.MessageFactory(pool)
    return lambda name: factory.GetPrototype(pool.FindMessageTypeByName(name))


def load(pool, files):
    """Adds every file after its imports; Add raises on anything that does not resolve."""
    placed = set()

    def place(name):
        if name in placed:
            return
        placed.add(name)
        for dependency in files[name].dependency:
            place(dependency)
        pool.Add(files[name])

    for name in files:
        place(name)


def main():
    address = sys.argv[1]
    given = json.load(sys.stdin)
    channel = grpc.insecure_channel(address)

    protocol = descriptor_pool.DescriptorPool()
    load(protocol, {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(given["reflection"])).file})
    protocol_class = message_classes(protocol)
    request_class = protocol_class("grpc.reflection.v1.ServerReflectionRequest")
    response_class = protocol_class("grpc.reflection.v1.ServerReflectionResponse")
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )

    def ask(**request):
        answer = next(info(iter([request_class(**request)]), timeout=TIMEOUT_S))
        if answer.HasField("error_response"):
            raise SystemExit(f"reflection refused {request}: {answer.error_response}")
        return answer

    services = [s.name for s in ask(list_services="").list_services_response.service]
    files = {}

    def keep(answer):
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.setdefault(file.name, file)

    for service in services:
        keep(ask(file_containing_symbol=service))
    while True:
        missing = {d for f in list(files.values()) for d in f.dependency if d not in files}
        if not missing:
            break
        for name in sorted(missing):
            keep(ask(file_by_filename=name))

    pool = descriptor_pool.DescriptorPool()
    load(pool, files)
    message_class = message_classes(pool)

    def method(full_name):
        service, name = full_name.rsplit("/", 1)
        described = pool.FindServiceByName(service).methods_by_name[name]
        request = message_class(described.input_type.full_name)
        response = message_class(described.output_type.full_name)
        return f"/{service}/{name}", request, response

    def metadata(token):
        return [("authorization", f"Bearer {token}")] if token else []

    def unary(full_name, body, token=None):
        path, request, response = method(full_name)
        call = channel.unary_unary(path, request_serializer=request.SerializeToString, response_deserializer=response.FromString)
        answer = call(json_format.ParseDict(body, request()), metadata=metadata(token), timeout=TIMEOUT_S)
        return json_format.MessageToDict(answer, including_default_value_fields=True)

    def first_of_stream(full_name, body, token=None):
        path, request, response = method(full_name)
        call = channel.unary_stream(path, request_serializer=request.SerializeToString, response_deserializer=response.FromString)
        stream = call(json_format.ParseDict(body, request()), metadata=metadata(token), timeout=TIMEOUT_S)
        first = json_format.MessageToDict(next(stream), including_default_value_fields=True)
        stream.cancel()
        return first

    suffix = uuid.uuid4().hex[:6]
    ana, ben = f"py_a{suffix}", f"py_b{suffix}"
    results = {}
    alice = unary("parley.auth.v1.AuthService/SignUp", {"username": ana, "password": "correct-horse"})
    bob = unary("parley.auth.v1.AuthService/SignUp", {"username": ben, "password": "correct-horse"})
    results["signUp"] = alice
    results["whoAmI"] = unary("parley.auth.v1.AuthService/WhoAmI", {}, alice["token"])
    results["subscribe"] = first_of_stream("parley.chat.v1.ChatService/Subscribe", {"cursors": []}, bob["token"])
    sent = unary(
        "parley.chat.v1.ChatService/Send",
        {"client_msg_id": "py-1", "to": {"username": ben}, "body": "hi from python"},
        alice["token"],
    )
    results["send"] = sent
    results["getHistory"] = unary(
        "parley.chat.v1.ChatService/GetHistory",
        {"conversation_id": sent["message"]["conversationId"], "before_seq": 0, "limit": 10},
        bob["token"],
    )
    results["listConversations"] = unary("parley.chat.v1.ChatService/ListConversations", {}, bob["token"])
    ref = {"name": "chat", "namespace": "default", "scalerMetadata": {"usersPerReplica": "3"}}
    results["getMetricSpec"] = unary("externalscaler.ExternalScaler/GetMetricSpec", ref)
    results["clusterStatus"] = unary("parley.ops.v1.OpsService/GetClusterStatus", {})
    results["check"] = unary("grpc.health.v1.Health/Check", {"service": "parley.chat.v1.ChatService"})
    results["list"] = unary("grpc.health.v1.Health/List", {})
    results["logOut"] = unary("parley.auth.v1.AuthService/LogOut", {}, alice["token"])

    print(json.dumps({
        "runtime": api_implementation.Type(),
        "services": services,
        "files": sorted(files),
        "users": [ana, ben],
        "results": results,
    }))


if __name__ == "__main__":
    main()
