// The CPU kernel emulator: kernel registry, block scheduler (threads as fibers), warp collectives, thread pool,
// guarded allocations with a fault handler (check mode), a CPU GEMM standing in for cuBLAS, and the C ABI that
// NativeReft.Cuda's EmulatorRuntime calls (Interop/Interop.Emulator.cs). See cuda_emulation.h for the model.

#include "cuda_emulation.h"
#include "emulator_abi.h"

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <ucontext.h>
#include <xmmintrin.h>
#else
#include <ucontext.h>
#endif

namespace emu {

thread_local ThreadState current __attribute__((tls_model("initial-exec")));

namespace {

// ---------------------------------------------------------------------------------------------------------
// Registry: filled by the static registrations of the generated kernel tables when a library loads.

struct Kernel {
    std::string name;
    std::string file;
    Thunk thunk;
    std::vector<int> parameter_sizes;
};

std::mutex& registry_gate() {
    static std::mutex gate;
    return gate;
}

std::unordered_map<std::string, Kernel*>& registry() {
    static std::unordered_map<std::string, Kernel*> kernels;
    return kernels;
}

// ---------------------------------------------------------------------------------------------------------
// Context switch. x86-64: save the callee-saved registers, MXCSR and the x87 control word on the current
// stack, store the stack pointer, load the other one and pop its registers (a few nanoseconds; ucontext's
// swapcontext makes a system call per switch). Elsewhere: ucontext.

#if defined(__x86_64__)
extern "C" void emu_switch_context(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl emu_switch_context
    .type emu_switch_context, @function
emu_switch_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw (%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch_context, .-emu_switch_context
)");
#endif

constexpr std::size_t StackBytes = 64 * 1024;

enum class LaneState { Ready, AtBarrier, AtWarp, Exited };

struct Block;

// A cp.async not yet performed: it lands when a wait_group covers its group.
struct PendingCopy {
    void* destination;
    const void* source;
    int bytes;
    int valid_bytes;
    int group;
};

struct Lane {
    std::vector<PendingCopy> copies;
    int committed_groups;
    Block* block;
    int linear;
    uint3 index;
    LaneState state;
    const char* barrier_file;
    int barrier_line;
    unsigned char* stack; // lowest usable address (a guard page lies below it)
#if defined(__x86_64__)
    void* sp;
#else
    ucontext_t context;
#endif
};

struct Warp {
    unsigned arrived;
    unsigned mask;
    WarpOp op;
    std::uint64_t values[32];
    int arguments[32];
    int widths[32];
    std::uint64_t results[32];
};

struct LaunchState;

// One block running on one OS thread.
struct Block {
    LaunchState* launch;
    std::vector<Lane>* lanes;
    int count;
    std::vector<int> ready; // ring buffer of lane numbers
    int ready_head;
    int ready_size;
    int at_barrier;
    int exited;
    std::vector<Warp> warps;
    bool failed;
#if defined(__x86_64__)
    void* scheduler_sp;
#else
    ucontext_t scheduler;
#endif
};

struct LaunchState {
    const Kernel* kernel;
    dim3 grid;
    dim3 block;
    std::size_t dynamic_shared;
    void** arguments;
    std::atomic<bool> failed{false};
    std::mutex error_gate;
    std::string error;

    void fail(const std::string& message) {
        std::lock_guard<std::mutex> hold(error_gate);
        if (!failed.exchange(true)) {
            error = message;
        }
    }
};

bool check_mode = false;

// Per OS thread: the fiber stacks (reused across blocks and launches) and the block being run.
struct Worker {
    std::vector<unsigned char*> stacks;
    std::vector<Lane> lanes;
    std::vector<unsigned char> shared;
    Block* block = nullptr;
    Lane* lane = nullptr;
    bool alternate_stack = false;

    ~Worker() {
        for (unsigned char* stack : stacks) {
            munmap(stack - page_size(), StackBytes + page_size());
        }
    }

    static std::size_t page_size() {
        static const std::size_t size = (std::size_t)sysconf(_SC_PAGESIZE);
        return size;
    }

    unsigned char* stack(int i) {
        while ((int)stacks.size() <= i) {
            std::size_t guard = page_size();
            void* memory = mmap(nullptr, StackBytes + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (memory == MAP_FAILED) {
                return nullptr;
            }
            mprotect(memory, guard, PROT_NONE); // a stack overflow faults instead of corrupting the next stack
            stacks.push_back(static_cast<unsigned char*>(memory) + guard);
        }
        return stacks[(std::size_t)i];
    }
};

thread_local Worker worker;

std::string format_dim(uint3 d) {
    char text[48];
    std::snprintf(text, sizeof text, "(%u, %u, %u)", d.x, d.y, d.z);
    return text;
}

std::string where(const Block& block) {
    return "kernel " + block.launch->kernel->name + " (" + block.launch->kernel->file + "), block " + format_dim(current.block_idx);
}

void push_ready(Block& block, int lane) {
    int n = block.count;
    block.ready[(std::size_t)((block.ready_head + block.ready_size) % n)] = lane;
    block.ready_size++;
}

// Switches from the running fiber back to its block's scheduler.
void yield_to_scheduler(Lane& lane) {
    Block& block = *lane.block;
#if defined(__x86_64__)
    emu_switch_context(&lane.sp, block.scheduler_sp);
#else
    swapcontext(&lane.context, &block.scheduler);
#endif
}

// Leaves the running fiber for good (after an error): the scheduler never resumes it.
[[noreturn]] void abandon(Lane& lane) {
    lane.block->failed = true;
    yield_to_scheduler(lane);
    std::abort(); // never resumed
}

extern "C" [[noreturn]] void emu_fiber_entry() {
    Lane& lane = *worker.lane;
    Block& block = *lane.block;
    block.launch->kernel->thunk(block.launch->arguments);
    lane.state = LaneState::Exited;
    block.exited++;
    yield_to_scheduler(lane);
    std::abort(); // an exited fiber is never resumed
}

#if !defined(__x86_64__)
void fiber_entry_ucontext() { emu_fiber_entry(); }
#endif

void start_fiber(Lane& lane) {
    unsigned char* top = lane.stack + StackBytes;
#if defined(__x86_64__)
    // The frame emu_switch_context pops: control words, six registers, then the return address (the entry)
    // and a fake return address for the entry itself, so it starts with the stack aligned as after a call.
    auto* frame = reinterpret_cast<std::uint64_t*>(top) - 10;
    std::memset(frame, 0, 10 * sizeof(std::uint64_t));
    std::uint16_t fpu_control = 0x037f;
    std::memcpy(frame, &fpu_control, sizeof fpu_control);
    std::uint32_t mxcsr = _mm_getcsr();
    std::memcpy(reinterpret_cast<unsigned char*>(frame) + 8, &mxcsr, sizeof mxcsr);
    frame[8] = reinterpret_cast<std::uint64_t>(&emu_fiber_entry);
    lane.sp = frame;
#else
    getcontext(&lane.context);
    lane.context.uc_stack.ss_sp = lane.stack;
    lane.context.uc_stack.ss_size = StackBytes;
    lane.context.uc_link = nullptr;
    makecontext(&lane.context, fiber_entry_ucontext, 0);
#endif
}

std::string lane_ranges(const Block& block, const std::function<bool(const Lane&)>& select) {
    std::string text;
    int start = -1;
    const std::vector<Lane>& lanes = *block.lanes;
    for (int i = 0; i <= block.count; i++) {
        bool in = i < block.count && select(lanes[(std::size_t)i]);
        if (in && start < 0) {
            start = i;
        } else if (!in && start >= 0) {
            if (!text.empty()) {
                text.append(", ");
            }
            text.append(std::to_string(start));
            if (start != i - 1) {
                text.append("-").append(std::to_string(i - 1));
            }
            start = -1;
        }
    }
    return text;
}

// Every live thread is blocked and nothing can release them: say who waits where.
std::string describe_stall(const Block& block) {
    std::string message = where(block) + ": barrier divergence: the block cannot make progress (a GPU would hang or misbehave).";
    std::map<std::pair<std::string, int>, bool> sites;
    for (int i = 0; i < block.count; i++) {
        const Lane& lane = (*block.lanes)[(std::size_t)i];
        if (lane.state == LaneState::AtBarrier) {
            sites[{lane.barrier_file, lane.barrier_line}] = true;
        }
    }
    for (const auto& [site, _] : sites) {
        message += " Threads " + lane_ranges(block, [&](const Lane& l) {
            return l.state == LaneState::AtBarrier && site.second == l.barrier_line && site.first == l.barrier_file;
        }) + " wait at __syncthreads() (" + site.first + ":" + std::to_string(site.second) + ").";
    }
    std::string warp = lane_ranges(block, [](const Lane& l) { return l.state == LaneState::AtWarp; });
    if (!warp.empty()) {
        message += " Threads " + warp + " wait in a warp collective (__shfl*_sync, __ballot_sync, __syncwarp...) for lanes that never arrive.";
    }
    std::string exited = lane_ranges(block, [](const Lane& l) { return l.state == LaneState::Exited; });
    if (!exited.empty()) {
        message += " Threads " + exited + " have exited.";
    }
    return message;
}

void run_block(LaunchState& launch, uint3 block_index) {
    Worker& self = worker;
    const dim3 dims = launch.block;
    const int count = (int)(dims.x * dims.y * dims.z);
    if (self.lanes.size() < (std::size_t)count) {
        self.lanes.resize((std::size_t)count);
    }
    if (self.shared.size() < launch.dynamic_shared) {
        self.shared.resize(launch.dynamic_shared);
    }
    if (check_mode && launch.dynamic_shared > 0) {
        std::memset(self.shared.data(), 0xff, launch.dynamic_shared); // NaN in every float: uninitialized reads show
    }

    Block block;
    block.launch = &launch;
    block.lanes = &self.lanes;
    block.count = count;
    block.ready.assign((std::size_t)count, 0);
    block.ready_head = 0;
    block.ready_size = 0;
    block.at_barrier = 0;
    block.exited = 0;
    block.warps.assign((std::size_t)((count + 31) / 32), Warp{});
    block.failed = false;

    current.block_idx = block_index;
    current.block_dim = launch.block;
    current.grid_dim = launch.grid;
    current.dynamic_shared = self.shared.data();

    for (int i = 0; i < count; i++) {
        Lane& lane = self.lanes[(std::size_t)i];
        lane.block = &block;
        lane.linear = i;
        lane.index = uint3{(unsigned)i % dims.x, ((unsigned)i / dims.x) % dims.y, (unsigned)i / (dims.x * dims.y)};
        lane.state = LaneState::Ready;
        lane.barrier_file = nullptr;
        lane.barrier_line = 0;
        lane.copies.clear();
        lane.committed_groups = 0;
        lane.stack = self.stack(i);
        if (lane.stack == nullptr) {
            launch.fail(where(block) + ": cannot map a fiber stack");
            return;
        }
        start_fiber(lane);
        push_ready(block, i);
    }

    self.block = &block;
    while (block.ready_size > 0 && !block.failed && !launch.failed.load(std::memory_order_relaxed)) {
        int next = block.ready[(std::size_t)block.ready_head];
        block.ready_head = (block.ready_head + 1) % count;
        block.ready_size--;
        Lane& lane = self.lanes[(std::size_t)next];
        lane.state = LaneState::Ready;
        current.thread_idx = lane.index;
        self.lane = &lane;
#if defined(__x86_64__)
        emu_switch_context(&block.scheduler_sp, lane.sp);
#else
        swapcontext(&block.scheduler, &lane.context);
#endif
    }
    self.lane = nullptr;
    self.block = nullptr;
    if (!block.failed && block.exited < count && !launch.failed.load()) {
        launch.fail(describe_stall(block));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Thread pool: the caller and (threads - 1) workers take indices from a shared counter.

class Pool {
public:
    Pool() {
        unsigned threads = std::max(1u, std::thread::hardware_concurrency());
        if (const char* value = std::getenv("NATIVEREFT_EMU_THREADS")) {
            threads = (unsigned)std::max(1, std::atoi(value));
        }
        for (unsigned i = 1; i < threads; i++) {
            workers_.emplace_back([this] { work(); });
        }
    }

    ~Pool() {
        {
            std::lock_guard<std::mutex> hold(gate_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (std::thread& thread : workers_) {
            thread.join();
        }
    }

    int threads() const { return (int)workers_.size() + 1; }

    // Runs body(i) for i in [0, count); returns when all are done. One job at a time.
    void run(long long count, const std::function<void(long long)>& body) {
        std::lock_guard<std::mutex> one_job(job_gate_);
        if (count <= 1 || workers_.empty()) {
            for (long long i = 0; i < count; i++) {
                body(i);
            }
            return;
        }
        {
            std::lock_guard<std::mutex> hold(gate_);
            body_ = &body;
            count_ = count;
            next_.store(0);
            busy_ = (int)workers_.size();
            generation_++;
        }
        wake_.notify_all();
        drain();
        std::unique_lock<std::mutex> hold(gate_);
        done_.wait(hold, [this] { return busy_ == 0; });
        body_ = nullptr;
    }

private:
    void drain() {
        for (long long i = next_.fetch_add(1); i < count_; i = next_.fetch_add(1)) {
            (*body_)(i);
        }
    }

    void work() {
        long long seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> hold(gate_);
                wake_.wait(hold, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) {
                    return;
                }
                seen = generation_;
            }
            drain();
            std::lock_guard<std::mutex> hold(gate_);
            if (--busy_ == 0) {
                done_.notify_all();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex job_gate_;
    std::mutex gate_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(long long)>* body_ = nullptr;
    long long count_ = 0;
    std::atomic<long long> next_{0};
    int busy_ = 0;
    long long generation_ = 0;
    bool stopping_ = false;
};

Pool& pool() {
    static Pool instance;
    return instance;
}

// ---------------------------------------------------------------------------------------------------------
// Check mode: allocations end at a PROT_NONE guard page (and start after one), so a stray access faults; the
// SIGSEGV handler turns a fault inside a kernel into a launch error naming the kernel, block and thread.

struct Guarded {
    unsigned char* base;
    std::size_t total;
    unsigned char* data;
    std::size_t bytes;
};

std::mutex allocations_gate;
std::map<std::uintptr_t, Guarded> guarded; // by data address
struct sigaction previous_segv;
struct sigaction previous_bus;
std::once_flag handler_once;

void describe_address(std::uintptr_t address, char* text, std::size_t size) {
    // Called from the signal handler with the allocation table possibly locked by another thread: try_lock.
    std::unique_lock<std::mutex> hold(allocations_gate, std::try_to_lock);
    if (hold.owns_lock()) {
        for (const auto& [key, g] : guarded) {
            auto data = (std::uintptr_t)g.data;
            if (address >= (std::uintptr_t)g.base && address < (std::uintptr_t)g.base + g.total) {
                if (address >= data + g.bytes) {
                    std::snprintf(text, size, "0x%lx, %lu bytes past the end of the %lu-byte buffer at 0x%lx", (unsigned long)address,
                        (unsigned long)(address - data - g.bytes), (unsigned long)g.bytes, (unsigned long)data);
                } else {
                    std::snprintf(text, size, "0x%lx, %lu bytes before the %lu-byte buffer at 0x%lx", (unsigned long)address,
                        (unsigned long)(data - address), (unsigned long)g.bytes, (unsigned long)data);
                }
                return;
            }
        }
    }
    std::snprintf(text, size, "0x%lx (not in any device buffer)", (unsigned long)address);
}

extern "C" [[noreturn]] void emu_fault_exit() {
    abandon(*worker.lane);
}

void on_fault(int signal, siginfo_t* info, void* context) {
    Lane* lane = worker.lane;
    if (lane != nullptr) {
        char address[160];
        describe_address((std::uintptr_t)info->si_addr, address, sizeof address);
        Block& block = *lane->block;
        block.launch->fail(where(block) + ", thread " + format_dim(lane->index) + ": out-of-bounds or invalid memory access at " + address);
#if defined(__x86_64__)
        // Resume on the fiber's own stack in emu_fault_exit, which hands control back to the scheduler.
        auto* uc = static_cast<ucontext_t*>(context);
        auto top = reinterpret_cast<std::uintptr_t>(lane->stack + StackBytes);
        uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(top - 8 - 4096);
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)&emu_fault_exit;
        return;
#else
        std::fprintf(stderr, "nativereft emulator: %s\n", block.launch->error.c_str());
        std::abort();
#endif
    }
    const struct sigaction& previous = signal == SIGBUS ? previous_bus : previous_segv;
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal);
    } else {
        std::signal(signal, SIG_DFL);
        std::raise(signal);
    }
}

void install_fault_handler() {
    std::call_once(handler_once, [] {
        struct sigaction action;
        std::memset(&action, 0, sizeof action);
        action.sa_sigaction = on_fault;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &previous_segv);
        sigaction(SIGBUS, &action, &previous_bus);
    });
}

// ---------------------------------------------------------------------------------------------------------
// CPU GEMM, cuBLAS semantics (column-major): C = alpha op(A) op(B) + beta C, beta == 0 never reads C.

float load(const void* base, int type, long long index) {
    if (type == EMU_TYPE_BF16) {
        std::uint32_t bits = (std::uint32_t) static_cast<const std::uint16_t*>(base)[index] << 16;
        float value;
        std::memcpy(&value, &bits, 4);
        return value;
    }
    return static_cast<const float*>(base)[index];
}

void store(void* base, int type, long long index, float value) {
    if (type == EMU_TYPE_BF16) {
        std::uint32_t u;
        std::memcpy(&u, &value, 4);
        std::uint16_t bits = (u & 0x7fffffffu) > 0x7f800000u ? (std::uint16_t)((u >> 16) | 0x40u)
                                                              : (std::uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        static_cast<std::uint16_t*>(base)[index] = bits;
        return;
    }
    static_cast<float*>(base)[index] = value;
}

} // namespace

void register_kernel(const char* name, const char* file, Thunk thunk, int parameter_count, const int* parameter_sizes) {
    std::lock_guard<std::mutex> hold(registry_gate());
    auto*& entry = registry()[name];
    delete entry;
    entry = new Kernel{name, file, thunk, std::vector<int>(parameter_sizes, parameter_sizes + parameter_count)};
}

void syncthreads(const char* file, int line) {
    Lane& lane = *worker.lane;
    Block& block = *lane.block;
    lane.state = LaneState::AtBarrier;
    lane.barrier_file = file;
    lane.barrier_line = line;
    block.at_barrier++;
    if (block.at_barrier == block.count) {
        for (int i = 0; i < block.count; i++) {
            const Lane& other = (*block.lanes)[(std::size_t)i];
            if (other.barrier_line != line || std::strcmp(other.barrier_file, file) != 0) {
                block.launch->fail(describe_stall(block));
                abandon(lane);
            }
        }
        block.at_barrier = 0;
        for (int i = 0; i < block.count; i++) {
            push_ready(block, i);
        }
    }
    yield_to_scheduler(lane);
    current.thread_idx = lane.index;
}

// mma.m16n8k16 bf16 -> fp32 for one warp (see mma_bf16_16x8x16 in cuda_emulation.h): values[l] is the address of
// lane l's MmaFragments. With g = l / 4 and t = l % 4, lane l holds
//   a[0] = A[g][2t, 2t+1]  a[1] = A[g+8][2t, 2t+1]  a[2] = A[g][2t+8, 2t+9]  a[3] = A[g+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]  b[1] = B[2t+8, 2t+9][g]
//   d[0], d[1] = D[g][2t, 2t+1]  d[2], d[3] = D[g+8][2t, 2t+1]
// (the lower element of a pair in the low 16 bits). Every lane's d is read (as C) before any is written.
static void multiply_fragments(const std::uint64_t* values) {
    float a[16][16], b[16][8], c[16][8];
    auto bf16 = [](unsigned bits) { return __uint_as_float(bits << 16); };
    MmaFragments lanes[32];
    for (int l = 0; l < 32; l++) {
        const MmaFragments* fragments = nullptr;
        std::memcpy(&fragments, &values[l], sizeof(fragments));
        lanes[l] = *fragments;
        const int g = l / 4, t = l % 4;
        for (int half = 0; half < 2; half++) {
            const int column = 2 * t + half;
            const int shift = 16 * half;
            a[g][column] = bf16((lanes[l].a[0] >> shift) & 0xffffu);
            a[g + 8][column] = bf16((lanes[l].a[1] >> shift) & 0xffffu);
            a[g][column + 8] = bf16((lanes[l].a[2] >> shift) & 0xffffu);
            a[g + 8][column + 8] = bf16((lanes[l].a[3] >> shift) & 0xffffu);
            b[column][g] = bf16((lanes[l].b[0] >> shift) & 0xffffu);
            b[column + 8][g] = bf16((lanes[l].b[1] >> shift) & 0xffffu);
            c[g][column] = lanes[l].d[half];
            c[g + 8][column] = lanes[l].d[2 + half];
        }
    }
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        for (int i = 0; i < 4; i++) {
            const int row = g + (i >= 2 ? 8 : 0), column = 2 * t + (i & 1);
            float sum = 0.0f;
            for (int k = 0; k < 16; k++) {
                sum += a[row][k] * b[k][column];
            }
            lanes[l].d[i] = c[row][column] + sum;
        }
    }
}

// ldmatrix .x4 for one warp (see load_matrix_x4 in cuda_emulation.h): values[l] is the address of lane l's
// MatrixLoad. Every matrix is read before any lane's registers are written.
static void load_matrix_fragments(const std::uint64_t* values, bool transposed) {
    std::uint16_t m[4][8][8];
    MatrixLoad lanes[32];
    for (int l = 0; l < 32; l++) {
        const MatrixLoad* load = nullptr;
        std::memcpy(&load, &values[l], sizeof(load));
        lanes[l] = *load;
    }
    for (int i = 0; i < 4; i++) {
        for (int row = 0; row < 8; row++) {
            std::memcpy(m[i][row], lanes[8 * i + row].row, sizeof(m[i][row]));
        }
    }
    for (int l = 0; l < 32; l++) {
        const int r = l / 4, c = 2 * (l % 4);
        for (int i = 0; i < 4; i++) {
            const unsigned lo = transposed ? m[i][c][r] : m[i][r][c];
            const unsigned hi = transposed ? m[i][c + 1][r] : m[i][r][c + 1];
            lanes[l].r[i] = lo | (hi << 16);
        }
    }
}

void misaligned(const void* address, int alignment, const char* access) {
    const Lane& lane = *worker.lane;
    char text[32];
    std::snprintf(text, sizeof(text), "%p", address);
    lane.block->launch->fail(where(*lane.block) + ", thread " + format_dim(lane.index) + ": " + access + " at " + text +
                             " is not " + std::to_string(alignment) + "-byte aligned (a GPU stops the kernel: misaligned address)");
}

void async_copy(void* destination, const void* source, int bytes, int valid_bytes) {
    Lane& lane = *worker.lane;
    lane.copies.push_back(PendingCopy{destination, source, bytes, valid_bytes, lane.committed_groups});
}

void async_commit() {
    worker.lane->committed_groups++;
}

// Performs, in issue order, the copies of every committed group but the newest `pending_groups`.
void async_wait(int pending_groups) {
    Lane& lane = *worker.lane;
    const int last = lane.committed_groups - 1 - pending_groups;
    std::size_t kept = 0;
    for (const PendingCopy& copy : lane.copies) {
        if (copy.group > last) {
            lane.copies[kept++] = copy;
            continue;
        }
        std::memcpy(copy.destination, copy.source, (std::size_t)copy.valid_bytes);
        std::memset(static_cast<unsigned char*>(copy.destination) + copy.valid_bytes, 0, (std::size_t)(copy.bytes - copy.valid_bytes));
    }
    lane.copies.resize(kept);
}

std::uint64_t warp_collective(unsigned mask, WarpOp op, std::uint64_t value, int argument, int width) {
    Lane& lane = *worker.lane;
    Block& block = *lane.block;
    const int id = lane.linear % 32;
    const int first = lane.linear - id;
    Warp& warp = block.warps[(std::size_t)(lane.linear / 32)];
    const unsigned present = block.count - first >= 32 ? 0xffffffffu : ((1u << (block.count - first)) - 1u);
    if (!(mask & (1u << id)) || (width & (width - 1)) != 0 || width < 1 || width > 32) {
        block.launch->fail(where(block) + ", thread " + format_dim(lane.index) + ": a warp collective with mask 0x" +
                           std::to_string(mask) + " that leaves out the calling lane, or a width that is not a power of two up to 32");
        abandon(lane);
    }
    if (warp.arrived != 0 && (warp.mask != mask || warp.op != op)) {
        block.launch->fail(where(block) + ", thread " + format_dim(lane.index) + ": lanes of one warp are in different warp collectives (or use different masks)");
        abandon(lane);
    }
    warp.mask = mask;
    warp.op = op;
    warp.values[id] = value;
    warp.arguments[id] = argument;
    warp.widths[id] = width;
    warp.arrived |= 1u << id;
    const bool matrix_op = op == WarpOp::MmaBf16 || op == WarpOp::LoadMatrix || op == WarpOp::LoadMatrixTransposed;
    if (matrix_op && (mask != 0xffffffffu || present != 0xffffffffu)) {
        block.launch->fail(where(block) + ", thread " + format_dim(lane.index) + ": mma.sync and ldmatrix need all 32 lanes of a full warp");
        abandon(lane);
    }
    if (warp.arrived == (mask & present) && op == WarpOp::MmaBf16) {
        multiply_fragments(warp.values);
    }
    if (warp.arrived == (mask & present) && (op == WarpOp::LoadMatrix || op == WarpOp::LoadMatrixTransposed)) {
        load_matrix_fragments(warp.values, op == WarpOp::LoadMatrixTransposed);
    }
    if (warp.arrived == (mask & present)) {
        const unsigned arrived = warp.arrived;
        std::uint64_t vote = 0;
        bool any = false;
        bool all = true;
        for (int l = 0; l < 32; l++) {
            if (arrived & (1u << l)) {
                vote |= (warp.values[l] != 0 ? 1ull : 0ull) << l;
                any = any || warp.values[l] != 0;
                all = all && warp.values[l] != 0;
            }
        }
        for (int l = 0; l < 32; l++) {
            if (!(arrived & (1u << l))) {
                continue;
            }
            const int w = warp.widths[l];
            const int base = l & ~(w - 1);
            int source = l;
            switch (warp.op) {
                case WarpOp::ShuffleIndex: source = base + (warp.arguments[l] & (w - 1)); break;
                case WarpOp::ShuffleXor: source = l ^ warp.arguments[l]; break;
                case WarpOp::ShuffleDown: source = (l - base) + warp.arguments[l] < w ? l + warp.arguments[l] : l; break;
                case WarpOp::ShuffleUp: source = (l - base) - warp.arguments[l] >= 0 ? l - warp.arguments[l] : l; break;
                default: break;
            }
            if (source < base || source >= base + w || !(arrived & (1u << source))) {
                source = l; // outside the segment or a lane not taking part: the lane keeps its own value
            }
            switch (warp.op) {
                case WarpOp::Ballot: warp.results[l] = vote; break;
                case WarpOp::Any: warp.results[l] = any; break;
                case WarpOp::All: warp.results[l] = all; break;
                case WarpOp::Sync: warp.results[l] = 0; break;
                default: warp.results[l] = warp.values[source]; break;
            }
        }
        warp.arrived = 0;
        for (int l = 0; l < 32; l++) {
            if (arrived & (1u << l)) {
                (*block.lanes)[(std::size_t)(first + l)].state = LaneState::AtWarp;
                push_ready(block, first + l);
            }
        }
    } else {
        lane.state = LaneState::AtWarp;
    }
    yield_to_scheduler(lane);
    current.thread_idx = lane.index;
    return warp.results[id];
}

} // namespace emu

// ---------------------------------------------------------------------------------------------------------
// C ABI

namespace {
thread_local std::string last_error;

int fail(const std::string& message) {
    last_error = message;
    return 1;
}
} // namespace

extern "C" {

const char* emu_last_error(void) { return last_error.c_str(); }

void* emu_find_kernel(const char* name) {
    std::lock_guard<std::mutex> hold(emu::registry_gate());
    auto found = emu::registry().find(name);
    return found == emu::registry().end() ? nullptr : found->second;
}

const char* emu_kernel_file(void* kernel) { return static_cast<emu::Kernel*>(kernel)->file.c_str(); }

int emu_kernel_parameters(void* kernel, int* sizes, int capacity) {
    const auto& parameters = static_cast<emu::Kernel*>(kernel)->parameter_sizes;
    for (int i = 0; i < (int)parameters.size() && i < capacity; i++) {
        sizes[i] = parameters[(std::size_t)i];
    }
    return (int)parameters.size();
}

int emu_kernel_count(const char* file) {
    std::lock_guard<std::mutex> hold(emu::registry_gate());
    int count = 0;
    for (const auto& [name, kernel] : emu::registry()) {
        count += file == nullptr || kernel->file == file;
    }
    return count;
}

int emu_launch_kernel(void* kernel_handle, dim3 grid, dim3 block, size_t dynamic_shared, void* stream, void** arguments) {
    (void)stream; // streams run in order on the caller's thread: a launch has finished when it returns
    auto* kernel = static_cast<emu::Kernel*>(kernel_handle);
    if (kernel == nullptr) {
        return fail("emu_launch: no such kernel");
    }
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (threads == 0 || threads > 1024 || blocks == 0 || grid.y > 65535 || grid.z > 65535 || block.z > 64) {
        return fail("kernel " + kernel->name + ": invalid launch configuration: grid (" + std::to_string(grid.x) + ", " +
                    std::to_string(grid.y) + ", " + std::to_string(grid.z) + "), block (" + std::to_string(block.x) + ", " +
                    std::to_string(block.y) + ", " + std::to_string(block.z) + ")");
    }
    emu::LaunchState launch;
    launch.kernel = kernel;
    launch.grid = grid;
    launch.block = block;
    launch.dynamic_shared = dynamic_shared;
    launch.arguments = arguments;
    if (emu::check_mode) {
        emu::install_fault_handler();
    }
    emu::pool().run((long long)blocks, [&](long long i) {
        if (launch.failed.load(std::memory_order_relaxed)) {
            return;
        }
        auto index = (unsigned long long)i;
        uint3 block_index{(unsigned)(index % grid.x), (unsigned)((index / grid.x) % grid.y), (unsigned)(index / ((unsigned long long)grid.x * grid.y))};
        emu::run_block(launch, block_index);
    });
    if (launch.failed.load()) {
        return fail(launch.error);
    }
    return 0;
}

int emu_launch(const char* kernel, dim3 grid, dim3 block, size_t dynamic_shared, void* stream, void** arguments) {
    void* handle = emu_find_kernel(kernel);
    if (handle == nullptr) {
        return fail(std::string("emu_launch: no kernel named ") + kernel + " is registered");
    }
    return emu_launch_kernel(handle, grid, block, dynamic_shared, stream, arguments);
}

void emu_set_check(int enabled) {
    emu::check_mode = enabled != 0;
    if (emu::check_mode) {
        emu::install_fault_handler();
    }
}

int emu_get_check(void) { return emu::check_mode ? 1 : 0; }

int emu_threads(void) { return emu::pool().threads(); }

void* emu_alloc(size_t bytes, int guard) {
    if (!guard) {
        size_t rounded = (bytes + 255) / 256 * 256;
        return std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
    }
    const size_t page = emu::Worker::page_size();
    const size_t pages = (bytes + page - 1) / page;
    const size_t total = (pages + 2) * page;
    void* memory = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        return nullptr;
    }
    auto* base = static_cast<unsigned char*>(memory);
    mprotect(base, page, PROT_NONE);
    mprotect(base + (pages + 1) * page, page, PROT_NONE);
    unsigned char* data = base + (pages + 1) * page - bytes; // ends exactly at the rear guard page
    std::lock_guard<std::mutex> hold(emu::allocations_gate);
    emu::guarded[(std::uintptr_t)data] = emu::Guarded{base, total, data, bytes};
    return data;
}

void emu_free(void* pointer) {
    {
        std::lock_guard<std::mutex> hold(emu::allocations_gate);
        auto found = emu::guarded.find((std::uintptr_t)pointer);
        if (found != emu::guarded.end()) {
            munmap(found->second.base, found->second.total);
            emu::guarded.erase(found);
            return;
        }
    }
    std::free(pointer);
}

int emu_gemm_strided_batched(int transa, int transb, int m, int n, int k, float alpha, const void* a, int a_type, int lda,
    long long stride_a, const void* b, int b_type, int ldb, long long stride_b, float beta, void* c, int c_type, int ldc,
    long long stride_c, int batch) {
    const bool types_ok = (a_type == EMU_TYPE_F32 || a_type == EMU_TYPE_BF16) && (b_type == EMU_TYPE_F32 || b_type == EMU_TYPE_BF16) &&
                          (c_type == EMU_TYPE_F32 || c_type == EMU_TYPE_BF16);
    if (m < 0 || n < 0 || k < 0 || batch < 0 || !types_ok || lda < (transa ? k : m) || ldb < (transb ? n : k) || ldc < m) {
        return fail("emu_gemm: invalid arguments (cuBLAS would return CUBLAS_STATUS_INVALID_VALUE)");
    }
    emu::pool().run((long long)batch * n, [&](long long job) {
        const long long p = job / n;
        const long long j = job % n;
        for (long long i = 0; i < m; i++) {
            float sum = 0.0f;
            for (long long q = 0; q < k; q++) {
                const long long ai = p * stride_a + (transa ? q + i * lda : i + q * lda);
                const long long bi = p * stride_b + (transb ? j + q * ldb : q + j * ldb);
                sum += emu::load(a, a_type, ai) * emu::load(b, b_type, bi);
            }
            const long long ci = p * stride_c + i + j * ldc;
            const float result = beta == 0.0f ? alpha * sum : alpha * sum + beta * emu::load(c, c_type, ci);
            emu::store(c, c_type, ci, result);
        }
    });
    return 0;
}

} // extern "C"
