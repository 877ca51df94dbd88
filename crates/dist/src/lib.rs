//! The process group a stage runs in: one process, or the ranks of an MPI
//! job that `mpirun -np N` (or Slurm's `srun`) started.
//!
//! - [`init`] at the top of `main`: MPI is started when a launcher started
//!   this process (its environment says so), else the world is this one
//!   process. A build without the `mpi` feature started as one rank of
//!   several refuses to run (each rank would do the whole job).
//! - [`World`]: rank, size and the collectives data-parallel training and
//!   sharded stages need, over f32/f64 slices and bytes. With one process
//!   every collective is the identity.
//! - [`fail`] and [`success`]: a stage's end. A failing rank prints its
//!   error on one line with its rank and stops the whole job
//!   (`MPI_Abort`), so every rank exits non-zero; success finalizes MPI.
//! - [`nccl`] (feature `nccl`): the same collectives on GPU memory.

use std::sync::OnceLock;

#[cfg(feature = "nccl")]
pub mod nccl;

/// Without the `nccl` feature there is no device group: every collective
/// goes through the host ([`World`]).
#[cfg(not(feature = "nccl"))]
pub mod nccl {
    use std::rc::Rc;

    use candle_core::{Device, Tensor};

    use crate::World;

    /// Never made in this build (no value of it exists).
    #[derive(Debug)]
    pub enum DeviceGroup {}

    impl DeviceGroup {
        /// None: this build has no NCCL.
        pub fn for_device(_: World, _: &Device) -> candle_core::Result<Option<Rc<DeviceGroup>>> {
            Ok(None)
        }
        pub fn all_reduce_sum(&self, _: &Tensor) -> candle_core::Result<()> {
            match *self {}
        }
        pub fn reduce_sum(&self, _: usize, _: &Tensor) -> candle_core::Result<()> {
            match *self {}
        }
        pub fn broadcast(&self, _: usize, _: &Tensor) -> candle_core::Result<()> {
            match *self {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Started by a launcher as one rank of several, without MPI.
    #[error("started as rank {rank} of {size} ({var} is set) but this build has no MPI: build with `make build-mpi` (cargo's --features dist/mpi), or run one process")]
    NoMpi {
        rank: usize,
        size: usize,
        var: &'static str,
    },
    #[error("MPI could not be initialized")]
    Init,
}

/// This process's place in the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    rank: usize,
    size: usize,
}

static WORLD: OnceLock<World> = OnceLock::new();

#[cfg(feature = "mpi")]
static UNIVERSE: std::sync::Mutex<Option<mpi::environment::Universe>> = std::sync::Mutex::new(None);

/// This process's rank among the job's ranks on its machine (the
/// launcher's `OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID` or
/// `SLURM_LOCALID`; 0 without a launcher): the GPU a rank takes when
/// `--device cuda` names none.
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok())
    .unwrap_or(0)
}

/// The launcher's word on this process's rank and the job's size, from
/// the environment: OpenMPI's mpirun (`OMPI_COMM_WORLD_*`), MPICH's and
/// Slurm's PMI (`PMI_RANK`, `PMI_SIZE`), an srun step
/// (`SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`). None: no launcher.
pub fn launched() -> Option<(usize, usize, &'static str)> {
    let num = |k: &str| std::env::var(k).ok()?.trim().parse::<usize>().ok();
    let pairs: [(&str, &str); 3] = [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
        ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
    ];
    for (r, s) in pairs {
        if let (Some(rank), Some(size)) = (num(r), num(s)) {
            return Some((rank, size, s_static(s)));
        }
    }
    None
}

fn s_static(s: &str) -> &'static str {
    match s {
        "OMPI_COMM_WORLD_SIZE" => "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE" => "PMI_SIZE",
        _ => "SLURM_STEP_NUM_TASKS",
    }
}

/// Start the world: MPI when a launcher started this process (and the
/// build has MPI), else one process. Idempotent.
pub fn init() -> Result<World, DistError> {
    if let Some(w) = WORLD.get() {
        return Ok(*w);
    }
    let w = start()?;
    Ok(*WORLD.get_or_init(|| w))
}

#[cfg(not(feature = "mpi"))]
fn start() -> Result<World, DistError> {
    match launched() {
        Some((rank, size, var)) if size > 1 => Err(DistError::NoMpi { rank, size, var }),
        _ => Ok(World::single()),
    }
}

#[cfg(feature = "mpi")]
fn start() -> Result<World, DistError> {
    use mpi::traits::Communicator;
    let Some((_, size, _)) = launched() else {
        return Ok(World::single());
    };
    if size > 1 {
        share_cores();
    }
    // Collectives are called from the main thread only (rayon's workers
    // never touch MPI).
    let (universe, _) =
        mpi::initialize_with_threading(mpi::Threading::Funneled).ok_or(DistError::Init)?;
    let comm = universe.world();
    let w = World {
        rank: comm.rank() as usize,
        size: comm.size() as usize,
    };
    *UNIVERSE.lock().expect("universe lock") = Some(universe);
    Ok(w)
}

/// Ranks on one machine share its cores: each rank's thread pools
/// (rayon, the matmul kernels) get cores / local ranks threads, unless
/// RAYON_NUM_THREADS says otherwise. Called before any pool exists.
#[cfg(feature = "mpi")]
fn share_cores() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let local = [
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "SLURM_NTASKS_PER_NODE",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok())
    .unwrap_or(1)
    .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: at the start of main, before any other thread exists.
    std::env::set_var("RAYON_NUM_THREADS", (cores / local).max(1).to_string());
}

/// The world [`init`] started; one process when it was never called (a
/// library used in-process, a test).
pub fn world() -> World {
    WORLD.get().copied().unwrap_or(World::single())
}

/// End the job's use of MPI (every rank calls it once, at the end of a
/// successful `main`; a rank that returns without it makes mpirun report
/// the job as failed). Nothing under one process.
pub fn finish() {
    #[cfg(feature = "mpi")]
    {
        if world().size > 1 {
            world().barrier();
        }
        // Dropping the universe finalizes MPI.
        drop(UNIVERSE.lock().expect("universe lock").take());
    }
}

/// A stage's failure: `TOOL: error: ERR` on one line (with the rank under
/// MPI), then the whole job stops (`MPI_Abort`: every rank exits
/// non-zero, and no rank is left waiting in a collective).
pub fn fail(tool: &str, err: impl std::fmt::Display) -> std::process::ExitCode {
    let w = world();
    if w.size > 1 {
        eprintln!("{tool}: error (rank {} of {}): {err}", w.rank, w.size);
        w.abort(1);
    }
    eprintln!("{tool}: error: {err}");
    std::process::ExitCode::FAILURE
}

/// A stage's success: [`finish`], exit status 0.
pub fn success() -> std::process::ExitCode {
    finish();
    std::process::ExitCode::SUCCESS
}

/// Elements per MPI call (counts are C ints; this also bounds the copy a
/// reduction makes).
#[cfg(feature = "mpi")]
const CHUNK: usize = 1 << 24;

impl World {
    pub const fn single() -> World {
        World { rank: 0, size: 1 }
    }
    pub fn rank(&self) -> usize {
        self.rank
    }
    pub fn size(&self) -> usize {
        self.size
    }
    /// Rank 0: the one that writes checkpoints and metrics.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// ` (rank r of N)` under an N-rank job, for a rank's own report
    /// lines; empty in one process.
    pub fn tag(&self) -> String {
        if self.size > 1 {
            format!(" (rank {} of {})", self.rank, self.size)
        } else {
            String::new()
        }
    }

    /// The items of `0..n` this rank takes when they are dealt round-robin
    /// (rank k takes k, k + size, ...).
    pub fn mine(&self, n: usize) -> impl Iterator<Item = usize> {
        (self.rank..n).step_by(self.size)
    }

    /// Stop every rank of the job with `code` (MPI_Abort); one process
    /// exits.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::traits::Communicator;
            mpi::topology::SimpleCommunicator::world().abort(code);
        }
        std::process::exit(code)
    }

    /// Wait until every rank gets here.
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::collective::CommunicatorCollectives;
            mpi::topology::SimpleCommunicator::world().barrier();
        }
    }

    /// Sum `buf` elementwise over the ranks; every rank gets the sum.
    pub fn all_reduce_sum_f32(&self, buf: &mut [f32]) {
        self.all_reduce(buf, Op::Sum)
    }
    pub fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        self.all_reduce(buf, Op::Sum)
    }
    pub fn all_reduce_max_f64(&self, buf: &mut [f64]) {
        self.all_reduce(buf, Op::Max)
    }
    pub fn all_reduce_sum_u64(&self, buf: &mut [u64]) {
        self.all_reduce(buf, Op::Sum)
    }

    /// Sum `buf` over the ranks into `root`'s `buf`; the others' buffers
    /// are left as they were (a reduce-scatter where `root` owns `buf`).
    pub fn reduce_sum_f32(&self, root: usize, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::collective::SystemOperation;
            use mpi::traits::*;
            let comm = mpi::topology::SimpleCommunicator::world();
            let p = comm.process_at_rank(root as i32);
            for c in buf.chunks_mut(CHUNK) {
                if self.rank == root {
                    let send = c.to_vec();
                    p.reduce_into_root(&send[..], c, SystemOperation::sum());
                } else {
                    p.reduce_into(&c[..], SystemOperation::sum());
                }
            }
        }
        let _ = (root, buf);
    }

    /// `root`'s `buf` on every rank.
    pub fn broadcast_f32(&self, root: usize, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::traits::*;
            let comm = mpi::topology::SimpleCommunicator::world();
            let p = comm.process_at_rank(root as i32);
            for c in buf.chunks_mut(CHUNK) {
                p.broadcast_into(c);
            }
        }
        let _ = (root, buf);
    }

    /// `root`'s bytes on every rank (any length).
    pub fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::traits::*;
            let comm = mpi::topology::SimpleCommunicator::world();
            let p = comm.process_at_rank(root as i32);
            let mut len = bytes.len() as u64;
            p.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            for c in bytes.chunks_mut(CHUNK) {
                p.broadcast_into(c);
            }
        }
        let _ = (root, bytes);
    }

    /// Every rank's bytes, in rank order, on every rank.
    pub fn all_gather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        (0..self.size)
            .map(|r| {
                let mut b = if r == self.rank {
                    mine.to_vec()
                } else {
                    Vec::new()
                };
                self.broadcast_bytes(r, &mut b);
                b
            })
            .collect()
    }

    fn all_reduce<T: Elem>(&self, buf: &mut [T], op: Op) {
        #[cfg(feature = "mpi")]
        if self.size > 1 {
            use mpi::collective::SystemOperation;
            use mpi::traits::*;
            let comm = mpi::topology::SimpleCommunicator::world();
            let op = match op {
                Op::Sum => SystemOperation::sum(),
                Op::Max => SystemOperation::max(),
            };
            for c in buf.chunks_mut(CHUNK) {
                let send = c.to_vec();
                comm.all_reduce_into(&send[..], c, op);
            }
        }
        let _ = (buf, op);
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Sum,
    Max,
}

#[cfg(feature = "mpi")]
trait Elem: mpi::datatype::Equivalence + Copy {}
#[cfg(not(feature = "mpi"))]
trait Elem: Copy {}
impl Elem for f32 {}
impl Elem for f64 {}
impl Elem for u64 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_collectives_are_the_identity() {
        let w = World::single();
        let mut a = vec![1.0f32, 2.0];
        w.all_reduce_sum_f32(&mut a);
        w.reduce_sum_f32(0, &mut a);
        w.broadcast_f32(0, &mut a);
        assert_eq!(a, [1.0, 2.0]);
        assert_eq!(w.all_gather_bytes(b"x"), vec![b"x".to_vec()]);
        assert_eq!(w.mine(5).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let half = World { rank: 1, size: 2 };
        assert_eq!(half.mine(5).collect::<Vec<_>>(), [1, 3]);
    }
}

/// The memory available now on this machine (MemAvailable of
/// /proc/meminfo), in bytes; `None` where the system does not say. The
/// limit every stage checks a size against before allocating it.
pub fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}
