import MixflowCore
import MixflowModels

extension ModelONNX {
    /// Heads of the official widths (docs/exactness.md §5.1); any other width needs them from metadata or the caller,
    /// because no tensor's shape depends on the number of heads.
    public static let officialHeads: [Int: Int] = [384: 6, 768: 12, 1024: 16, 1152: 16]

    /// Infers a SiT shape from official-name → dims: depth from the block count, hidden, in_channels and patch
    /// from x_embedder.proj.weight [D, C, p, p], input size from pos_embed's tokens × patch, num_classes from the
    /// label table rows − 1, learn_sigma from final_layer.linear rows (p²·2C or p²·C), the MLP ratio from
    /// blocks.0.mlp.fc1 rows / D; heads from `heads`, else the official table.
    /// - Throws: `.format` (a tensor needed for inference is missing or has an impossible shape),
    ///   `.invalidArgument` (heads not inferable).
    public static func inferConfig(_ shapes: [String: [Int64]], heads: Int? = nil) throws -> SiTConfig {
        func dims(_ name: String, rank: Int) throws -> [Int] {
            guard let d = shapes[name] else {
                throw MixflowError.format("no model.* metadata, and the tensor \"\(name)\" needed to infer the architecture is missing")
            }
            guard d.count == rank, d.allSatisfy({ $0 > 0 && $0 <= Int64(Int32.max) }) else {
                throw MixflowError.format("\"\(name)\" has dims \(d); inferring the architecture needs \(rank) positive dims")
            }
            return d.map { Int($0) }
        }
        let patchW = try dims("x_embedder.proj.weight", rank: 4)
        let hidden = patchW[0], channels = patchW[1], patch = patchW[2]
        guard patchW[3] == patch else {
            throw MixflowError.format("x_embedder.proj.weight has dims \(patchW); SiT patches are square")
        }
        let pos = try dims("pos_embed", rank: 3)
        let grid = Int(Double(pos[1]).squareRoot().rounded())
        guard pos[0] == 1, pos[2] == hidden, grid * grid == pos[1] else {
            throw MixflowError.format("pos_embed has dims \(pos); SiT needs [1, T, \(hidden)] with T a square number")
        }
        let classes = try dims("y_embedder.embedding_table.weight", rank: 2)[0] - 1
        let outRows = try dims("final_layer.linear.weight", rank: 2)[0]
        let learnSigma: Bool
        switch outRows {
        case patch * patch * 2 * channels: learnSigma = true
        case patch * patch * channels: learnSigma = false
        default:
            throw MixflowError.format("final_layer.linear.weight has \(outRows) rows; with patch \(patch) and \(channels) "
                                      + "channels SiT needs \(patch * patch * 2 * channels) (learn_sigma) or \(patch * patch * channels)")
        }
        var blocks = Set<Int>()
        for name in shapes.keys where name.hasPrefix("blocks.") {
            if let i = Int(name.split(separator: Character("."))[1]) { blocks.insert(i) }
        }
        let depth = blocks.count
        guard depth > 0, blocks.max() == depth - 1 else {
            throw MixflowError.format("the blocks present are \(blocks.sorted().prefix(8))…; SiT needs blocks 0..<depth with none missing")
        }
        let fc1 = try dims("blocks.0.mlp.fc1.weight", rank: 2)[0]
        guard fc1 % hidden == 0 else {
            throw MixflowError.format("blocks.0.mlp.fc1.weight has \(fc1) rows, not a multiple of hidden \(hidden)")
        }
        guard let h = heads ?? officialHeads[hidden] else {
            throw MixflowError.invalidArgument("the file has no model.heads metadata and hidden \(hidden) is not an official "
                                               + "SiT width (384, 768, 1024, 1152): pass heads explicitly")
        }
        guard h > 0, hidden % h == 0 else {
            throw MixflowError.invalidArgument("heads must divide hidden \(hidden), got \(h)")
        }
        var c = SiTConfig(depth: depth, hidden: hidden, heads: h, patch: patch, inputSize: grid * patch,
                          inChannels: channels, numClasses: classes, learnSigma: learnSigma)
        c.mlpRatio = fc1 / hidden
        do { try c.validate() } catch let MixflowError.invalidArgument(m) {
            throw MixflowError.format("the inferred architecture is invalid: \(m)")
        }
        return c
    }
}
