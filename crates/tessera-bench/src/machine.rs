//! What the numbers were measured on: cores, CPU model, kernel, and the filesystem of
//! the benchmark directory (an fsync on tmpfs costs nothing and proves nothing).

use std::fs;
use std::path::Path;

/// The machine and the filesystem under the benchmark directory.
#[derive(Clone, Debug)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// Mount point, device and type of the filesystem holding the benchmark directory.
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
}

/// Filesystems on which `fsync` does not reach a disk.
pub const MEMORY_FILESYSTEMS: &[&str] = &["tmpfs", "ramfs", "devtmpfs"];

impl Machine {
    pub fn probe(bench_dir: &Path) -> Machine {
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_string();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let dir = fs::canonicalize(bench_dir).unwrap_or_else(|_| bench_dir.to_path_buf());
        let (mount_point, device, fs_type) =
            mount_of(&mounts, &dir.to_string_lossy()).unwrap_or(("?".into(), "?".into(), "unknown".into()));
        Machine { nproc, cpu_model, kernel, mount_point, device, fs_type }
    }

    pub fn fsync_is_meaningless(&self) -> bool {
        MEMORY_FILESYSTEMS.contains(&self.fs_type.as_str())
    }
}

/// The (mount point, device, type) of the mount holding `path`: the longest mount point
/// that is `path` or one of its ancestors (the last such line wins, as a later mount
/// hides an earlier one on the same point).
pub fn mount_of(mounts: &str, path: &str) -> Option<(String, String, String)> {
    let mut best: Option<(String, String, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(device), Some(point), Some(fs_type)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        let inside = point == "/"
            || path == point
            || (path.starts_with(&point) && path.as_bytes().get(point.len()) == Some(&b'/'));
        if inside && best.as_ref().is_none_or(|(p, _, _)| point.len() >= p.len()) {
            best = Some((point, device.to_string(), fs_type.to_string()));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_mount_point_wins() {
        let mounts = "/dev/vda / ext4 rw 0 0\n\
                      tmpfs /tmp tmpfs rw 0 0\n\
                      tmpfs /tmpfoo tmpfs rw 0 0\n\
                      /dev/vdb /work/data xfs rw 0 0\n";
        let get = |p: &str| mount_of(mounts, p).map(|(point, _, t)| (point, t));
        assert_eq!(get("/work/main/target"), Some(("/".into(), "ext4".into())));
        assert_eq!(get("/tmp/x"), Some(("/tmp".into(), "tmpfs".into())));
        assert_eq!(get("/tmpx/y"), Some(("/".into(), "ext4".into())));
        assert_eq!(get("/work/data"), Some(("/work/data".into(), "xfs".into())));
        assert_eq!(get("/work/data/a/b"), Some(("/work/data".into(), "xfs".into())));
    }
}
