// The reference JSON of tests/unit/gateway_json (see main.go): flyteadmin v1.16.8's versions.
module flyteadmin.invalid/gatewayjson

go 1.26.0

require (
	github.com/flyteorg/flyte/flyteidl v1.16.8
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.28.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260401024825-9d38bb4040a9
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.54.0 // indirect
	golang.org/x/sys v0.45.0 // indirect
	golang.org/x/text v0.37.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260401024825-9d38bb4040a9 // indirect
	google.golang.org/grpc v1.80.0 // indirect
)
