//! `docs/benchmarks.md` has two authors: `make bench` writes the whole page,
//! and the long soak (`make soak-long`) writes its own section, which the
//! bench must carry over rather than erase.

/// The heading of the soak's section.
pub const SOAK_HEADING: &str = "## Long soak";
/// The heading of CI's stage times, copied from what `.ci/run` prints.
pub const CI_HEADING: &str = "## CI";

/// The section that starts at the line `heading`, up to the next `## `
/// heading or the end, when the document has one.
pub fn section<'a>(doc: &'a str, heading: &str) -> Option<&'a str> {
    let start = heading_at(doc, heading)?;
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(doc.len(), |i| start + heading.len() + i + 1);
    Some(&doc[start..end])
}

/// `doc` with the section `heading` replaced by `new` (which starts with that
/// heading), or with `new` appended when there is no such section.
pub fn replace_section(doc: &str, heading: &str, new: &str) -> String {
    let new = format!("{}\n", new.trim_end());
    match (heading_at(doc, heading), section(doc, heading)) {
        (Some(start), Some(old)) => {
            let after = &doc[start + old.len()..];
            let gap = if after.is_empty() { "" } else { "\n" };
            format!("{}{new}{gap}{after}", &doc[..start])
        }
        _ if doc.is_empty() => new,
        _ => format!("{}\n\n{new}", doc.trim_end()),
    }
}

/// Where the line `heading` begins, matching whole lines only.
fn heading_at(doc: &str, heading: &str) -> Option<usize> {
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        if line.trim_end() == heading {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The machine a figure was measured on: CPU model, cores, memory.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1_048_576.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "# Benchmarks\n\n## Goals\n\ntable\n\n## Long soak\n\nold figures\n\n## Memory\n\nrss\n";

    #[test]
    fn finds_a_section_up_to_the_next_heading() {
        assert_eq!(
            section(DOC, SOAK_HEADING),
            Some("## Long soak\n\nold figures\n\n")
        );
        assert_eq!(section(DOC, "## Long"), None, "whole lines only");
        assert_eq!(
            section("x\n## Long soak\nlast", SOAK_HEADING),
            Some("## Long soak\nlast")
        );
    }

    #[test]
    fn replaces_in_place_and_keeps_the_rest() {
        let doc = replace_section(DOC, SOAK_HEADING, "## Long soak\n\nnew figures\n");
        assert_eq!(
            doc,
            "# Benchmarks\n\n## Goals\n\ntable\n\n## Long soak\n\nnew figures\n\n## Memory\n\nrss\n"
        );
    }

    #[test]
    fn appends_when_absent() {
        let doc = replace_section(
            "# Benchmarks\n\n## Goals\n",
            SOAK_HEADING,
            "## Long soak\n\nf",
        );
        assert_eq!(doc, "# Benchmarks\n\n## Goals\n\n## Long soak\n\nf\n");
        assert_eq!(
            replace_section("", SOAK_HEADING, "## Long soak\n"),
            "## Long soak\n"
        );
    }
}
