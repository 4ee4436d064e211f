import HTTPTypes
import Hummingbird

/// Largest JSON body the registry's endpoints read.
let registryBodyLimit = 64 * 1024

extension HTTPResponse.Status {
    static let locked = HTTPResponse.Status(code: 423, reasonPhrase: "Locked")
}
