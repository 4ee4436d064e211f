#!/usr/bin/env bash
# Regenerates the committed Swift code for Protos/streamhub/v1/*.proto (messages and grpc-swift 2 stubs)
# into Sources/Overlays/GRPC/Generated. Run it after changing a .proto; the generated files are
# committed so builds never need protoc or the plugins.
#
# Needs protoc (apt install protobuf-compiler). The two plugins are built once, in release mode, in a
# scratch package under ${GRPCGEN_DIR:-/tmp/streamhub-grpcgen} (a few minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v protoc >/dev/null || { echo "protoc is needed: apt-get install protobuf-compiler" >&2; exit 1; }

gen=${GRPCGEN_DIR:-/tmp/streamhub-grpcgen}
mkdir -p "$gen/Sources/dummy"
cat >"$gen/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "grpcgen",
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.28.0"),
    ],
    targets: [.executableTarget(name: "dummy", path: "Sources/dummy")]
)
SWIFT
echo 'print("plugins only")' >"$gen/Sources/dummy/main.swift"
(cd "$gen" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
bin=$(cd "$gen" && swift build -c release --show-bin-path)

out=Sources/Overlays/GRPC/Generated
mkdir -p "$out"
protoc --proto_path=Protos \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$out" --swift_opt=Visibility=Public \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" --grpc-swift-2_out="$out" \
    --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true \
    Protos/streamhub/v1/*.proto
echo "generated into $out:"
find "$out" -name '*.swift' | sort
