// Reference JSON for tests/unit/gateway_json: the HTTP JSON that flyteadmin v1.16.8 writes.
//
// Reads lines "name <message full name> <hex of the binary message>" and writes one JSON line per
// case with the message as flyteadmin's grpc-gateway marshalers render it: "json" for
// `Accept: application/json` (flyteadmin's JSONPb: proto names, EmitUnpopulated,
// EmitDefaultValues; pkg/server/service.go) and "wildcard" for any other Accept (grpc-gateway's
// default marshaler: lowerCamelCase names, EmitUnpopulated).
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	_ "github.com/flyteorg/flyte/flyteidl/gen/pb-go/flyteidl/admin"
	_ "github.com/flyteorg/flyte/flyteidl/gen/pb-go/flyteidl/service"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

type golden struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Wire     string          `json:"wire"`
	JSON     json.RawMessage `json:"json"`
	Wildcard json.RawMessage `json:"wildcard"`
}

func main() {
	admin := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{
		UseProtoNames: true, EmitUnpopulated: true, EmitDefaultValues: true}}
	wildcard := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		fields := strings.Fields(in.Text() + " ") // an empty message has no hex
		if len(fields) == 2 {
			fields = append(fields, "")
		}
		if len(fields) != 3 {
			fail(fmt.Errorf("bad line %q", in.Text()))
		}
		kind, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(fields[1]))
		fail(err)
		data, err := hex.DecodeString(fields[2])
		fail(err)
		message := kind.New().Interface()
		fail(proto.Unmarshal(data, message))
		a, err := admin.Marshal(message)
		fail(err)
		w, err := wildcard.Marshal(message)
		fail(err)
		fail(out.Encode(golden{fields[0], fields[1], fields[2], a, w}))
	}
	fail(in.Err())
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
