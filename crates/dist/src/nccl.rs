//! The ranks' collectives on GPU memory: NCCL (cudarc's bindings, as
//! candle re-exports them), one communicator per process and GPU, its
//! unique id made by rank 0 and broadcast over MPI.
//!
//! Each collective works in place on a contiguous candle tensor on the
//! rank's GPU (f32, bf16, f16 or f64), on the device's own stream, so it
//! is ordered after the kernels that wrote the tensor and before the ones
//! that read it: no host copy and no synchronisation beyond candle's own.
//! On the CPU (or one process) the host collectives of [`World`] do the
//! same job; [`DeviceGroup::for_device`] says which applies.
//!
//! NCCL gives each rank its own GPU: under mpirun, `--device cuda` picks
//! the GPU of the rank's local rank ([`local_rank`]).

use std::cell::RefCell;
use std::rc::Rc;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, ReduceOp};
use candle_core::{CpuStorage, CudaStorage, DType, Device, InplaceOp1, Layout, Tensor};

use crate::World;

/// NCCL's communicator over the job's ranks, on one GPU.
pub struct DeviceGroup {
    comm: Comm,
    ordinal: usize,
}

impl std::fmt::Debug for DeviceGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceGroup(cuda:{}, rank {} of {})",
            self.ordinal,
            self.comm.rank(),
            self.comm.world_size()
        )
    }
}

thread_local! {
    static GROUP: RefCell<Option<Rc<DeviceGroup>>> = const { RefCell::new(None) };
}

fn nccl_error(what: &str, e: impl std::fmt::Debug) -> candle_core::Error {
    candle_core::Error::Msg(format!("NCCL {what}: {e:?}"))
}

impl DeviceGroup {
    /// The communicator of the job's ranks on `device`: None on the CPU or
    /// in one process (the host collectives apply). Collective: every rank
    /// calls it with its GPU, the first time in the same order; later
    /// calls return the same communicator.
    pub fn for_device(
        world: World,
        device: &Device,
    ) -> candle_core::Result<Option<Rc<DeviceGroup>>> {
        let Device::Cuda(cuda) = device else {
            return Ok(None);
        };
        if world.size() == 1 {
            return Ok(None);
        }
        let ordinal = match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
            other => {
                return Err(candle_core::Error::Msg(format!(
                    "not a CUDA device: {other:?}"
                )))
            }
        };
        if let Some(g) = GROUP.with(|g| g.borrow().clone()) {
            if g.ordinal != ordinal {
                return Err(candle_core::Error::Msg(format!(
                    "NCCL: this rank's communicator is on cuda:{}, not cuda:{ordinal}",
                    g.ordinal
                )));
            }
            return Ok(Some(g));
        }
        // Rank 0's unique id, to every rank over MPI.
        let mut bytes = if world.is_root() {
            let id = Id::new().map_err(|e| nccl_error("unique id", e))?;
            id.internal().iter().map(|&c| c as u8).collect()
        } else {
            Vec::new()
        };
        world.broadcast_bytes(0, &mut bytes);
        let mut internal = [0 as std::ffi::c_char; 128];
        if bytes.len() != internal.len() {
            return Err(candle_core::Error::Msg(format!(
                "NCCL: rank 0's unique id has {} bytes, not 128",
                bytes.len()
            )));
        }
        for (d, s) in internal.iter_mut().zip(&bytes) {
            *d = *s as std::ffi::c_char;
        }
        let comm = Comm::from_rank(
            cuda.cuda_stream(),
            world.rank(),
            world.size(),
            Id::uninit(internal),
        )
        .map_err(|e| nccl_error("communicator", e))?;
        let g = Rc::new(DeviceGroup { comm, ordinal });
        GROUP.with(|slot| *slot.borrow_mut() = Some(g.clone()));
        Ok(Some(g))
    }

    /// Sum `t` elementwise over the ranks, in place; every rank gets the sum.
    pub fn all_reduce_sum(&self, t: &Tensor) -> candle_core::Result<()> {
        t.inplace_op1(&Collective {
            group: self,
            kind: Kind::AllReduce,
        })
    }

    /// Sum `t` over the ranks into `root`'s `t` (the others' are left
    /// undefined, as NCCL's reduce leaves them).
    pub fn reduce_sum(&self, root: usize, t: &Tensor) -> candle_core::Result<()> {
        t.inplace_op1(&Collective {
            group: self,
            kind: Kind::Reduce(root),
        })
    }

    /// `root`'s `t` on every rank, in place.
    pub fn broadcast(&self, root: usize, t: &Tensor) -> candle_core::Result<()> {
        t.inplace_op1(&Collective {
            group: self,
            kind: Kind::Broadcast(root),
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    AllReduce,
    Reduce(usize),
    Broadcast(usize),
}

/// One collective as candle's in-place op on a tensor's storage.
struct Collective<'a> {
    group: &'a DeviceGroup,
    kind: Kind,
}

impl Collective<'_> {
    fn run<T>(
        &self,
        buf: &mut candle_core::cuda_backend::cudarc::driver::CudaSlice<T>,
        n: usize,
    ) -> candle_core::Result<()>
    where
        T: candle_core::cuda_backend::cudarc::nccl::safe::NcclType,
    {
        if buf.len() != n {
            return Err(candle_core::Error::Msg(format!(
                "NCCL {}: the tensor ({n} elements) must own its whole buffer ({})",
                self.name(),
                buf.len()
            )));
        }
        let comm = &self.group.comm;
        let r = match self.kind {
            Kind::AllReduce => comm.all_reduce_in_place(buf, &ReduceOp::Sum),
            Kind::Reduce(root) => comm.reduce_in_place(buf, &ReduceOp::Sum, root as i32),
            Kind::Broadcast(root) => comm.broadcast_in_place(buf, root as i32),
        };
        r.map(|_| ()).map_err(|e| nccl_error(self.name(), e))
    }
}

impl InplaceOp1 for Collective<'_> {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::AllReduce => "all-reduce",
            Kind::Reduce(_) => "reduce",
            Kind::Broadcast(_) => "broadcast",
        }
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout) -> candle_core::Result<()> {
        Err(candle_core::Error::Msg(format!(
            "NCCL {} on a CPU tensor: the host collectives apply",
            self.name()
        )))
    }

    fn cuda_fwd(&self, s: &mut CudaStorage, l: &Layout) -> candle_core::Result<()> {
        // The whole buffer: a view (offset or strides) would reduce
        // elements outside the tensor.
        if !l.is_contiguous() || l.start_offset() != 0 {
            return Err(candle_core::Error::Msg(format!(
                "NCCL {}: the tensor must be contiguous from its buffer's start",
                self.name()
            )));
        }
        let n = l.shape().elem_count();
        match s.dtype() {
            DType::F32 => self.run(s.as_cuda_slice_mut::<f32>()?, n),
            DType::BF16 => self.run(s.as_cuda_slice_mut::<half::bf16>()?, n),
            DType::F16 => self.run(s.as_cuda_slice_mut::<half::f16>()?, n),
            DType::F64 => self.run(s.as_cuda_slice_mut::<f64>()?, n),
            d => Err(candle_core::Error::Msg(format!(
                "NCCL {} of {d:?} tensors",
                self.name()
            ))),
        }
    }
}
