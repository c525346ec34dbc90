/// A grouped bar chart of simulation results, as a standalone SVG: one panel per scenario,
/// one group per metric, one bar per policy. Each metric is scaled to its largest value in
/// the panel (every metric here is better when lower), and each bar carries its figure.
public enum SVGChart {
    static let metrics: [(name: String, value: @Sendable (SimulationResult) -> Double, format: @Sendable (Double) -> String)] = [
        ("mean response (s)", { $0.meanResponseSeconds }, { SimulationReport.fixed($0, 2) }),
        ("p95 response (s)", { $0.p95ResponseSeconds }, { SimulationReport.fixed($0, 2) }),
        ("deadline miss (%)", { $0.deadlineMissRatio * 100 }, { SimulationReport.fixed($0, 1) }),
        ("critical miss (%)", { $0.criticalDeadlineMissRatio * 100 }, { SimulationReport.fixed($0, 1) }),
        ("energy (kJ)", { $0.energyKJ }, { SimulationReport.fixed($0, 0) }),
        ("imbalance", { $0.imbalance }, { SimulationReport.fixed($0, 2) }),
        ("network (MB)", { $0.networkMB }, { SimulationReport.fixed($0, 0) }),
    ]

    static let palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]

    /// `panels`: per scenario, its results (one per policy, the same policies in each).
    public static func render(_ panels: [[SimulationResult]]) -> String {
        let policies = panels.first?.map(\.policy) ?? []
        let barWidth = 14.0
        let gap = 26.0
        let panelHeight = 230.0
        let top = 60.0
        let left = 30.0
        let groupWidth = Double(policies.count) * barWidth + gap
        let width = left * 2 + Double(metrics.count) * groupWidth
        let height = top + Double(panels.count) * (panelHeight + 40) + 10
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="20" font-size="14" font-weight="bold">FogScheduler placement policies (lower is better)</text>

            """
        for (i, policy) in policies.enumerated() {
            let x = left + Double(i) * 110
            svg += "<rect x=\"\(x)\" y=\"32\" width=\"12\" height=\"12\" fill=\"\(palette[i % palette.count])\"/>"
            svg += "<text x=\"\(x + 16)\" y=\"42\">\(escape(policy))</text>\n"
        }
        for (p, results) in panels.enumerated() {
            let y0 = top + Double(p) * (panelHeight + 40)
            let baseline = y0 + panelHeight - 30
            let plotHeight = panelHeight - 70
            if let first = results.first {
                svg += "<text x=\"\(left)\" y=\"\(y0 + 14)\" font-size=\"13\" font-weight=\"bold\">\(escape(first.scenario))</text>\n"
            }
            svg += "<line x1=\"\(left)\" y1=\"\(baseline)\" x2=\"\(width - left)\" y2=\"\(baseline)\" stroke=\"#999\"/>\n"
            for (m, metric) in metrics.enumerated() {
                let x0 = left + Double(m) * groupWidth + gap / 2
                let values = results.map(metric.value)
                let largest = max(values.max() ?? 0, 1e-12)
                for (i, value) in values.enumerated() {
                    let h = value / largest * plotHeight
                    let x = x0 + Double(i) * barWidth
                    svg +=
                        "<rect x=\"\(r(x))\" y=\"\(r(baseline - h))\" width=\"\(barWidth - 2)\" height=\"\(r(h))\" "
                        + "fill=\"\(palette[i % palette.count])\"><title>\(escape(results[i].policy)): \(metric.format(value))</title></rect>"
                    svg +=
                        "<text x=\"\(r(x + barWidth / 2))\" y=\"\(r(baseline - h - 3))\" font-size=\"8\" text-anchor=\"start\" "
                        + "transform=\"rotate(-90 \(r(x + barWidth / 2)) \(r(baseline - h - 3)))\">\(metric.format(value))</text>\n"
                }
                svg +=
                    "<text x=\"\(r(x0 + Double(values.count) * barWidth / 2))\" y=\"\(r(baseline + 14))\" "
                    + "text-anchor=\"middle\" font-size=\"10\">\(escape(metric.name))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    private static func r(_ value: Double) -> String { SimulationReport.fixed(value, 1) }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
