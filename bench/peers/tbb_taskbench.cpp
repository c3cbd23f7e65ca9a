// Task Bench's patterns (taskbench.h) with oneTBB's flow graph: one
// continue_node per task. A flow graph knows no data, so the edges are
// what a runtime with data would derive: from the producers of the outputs
// a task reads, and from the readers of the buffer it overwrites (the last
// step's readers of the output two steps back).
//   tbb_taskbench PATTERN WIDTH STEPS ROUNDS   -> prints wall seconds of the
//       second of two runs (the first starts oneTBB's workers)
// A failed check prints the first failure and exits 1.
#include <oneapi/tbb/flow_graph.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

extern "C" {
#include "taskbench.h"
#include "work.h"
}

using namespace oneapi::tbb::flow;
using node = continue_node<continue_msg>;

int main(int argc, char **argv)
{
    int pattern = argc == 5 ? tb_pattern_by_name(argv[1]) : -1;
    long width = argc == 5 ? std::atol(argv[2]) : 0, steps = argc == 5 ? std::atol(argv[3]) : 0;
    if (pattern < 0 || width < 1 || width > TB_MAX_DEPS || steps < 1) {
        std::fprintf(stderr, "usage: %s PATTERN WIDTH STEPS ROUNDS\n", argv[0]);
        return 2;
    }
    uint64_t rounds = std::strtoull(argv[4], nullptr, 10);
    std::vector<tb_stamp> out(2 * width);
    // Two passes, the second timed: the first starts oneTBB's workers,
    // which simpler's worker has before its runs are timed.
    double wall = 0;
    for (int pass = 0; pass < 2; pass++) {
        std::memset(out.data(), 0xff, out.size() * sizeof out[0]); // no stamp yet
        uint64_t err[TB_ERR_WORDS] = {0};
        auto t0 = std::chrono::steady_clock::now();
        {
            graph g;
            std::vector<std::unique_ptr<node>> nodes(steps * width);
            std::vector<node *> roots;
            // read_by[q][c]: point c of the last step read q's output.
            std::vector<std::vector<char>> read_by(width, std::vector<char>(width)), reading = read_by;
            for (long t = 0; t < steps; t++) {
                for (auto &r : reading)
                    std::fill(r.begin(), r.end(), 0);
                for (long p = 0; p < tb_width_at(pattern, width, t); p++) {
                    struct {
                        long d[TB_MAX_DEPS];
                        uint32_t n;
                    } deps;
                    deps.n = tb_deps(pattern, width, t, p, deps.d);
                    tb_stamp *prev = &out[((t + 1) % 2) * width], *mine = &out[(t % 2) * width + p];
                    nodes[t * width + p].reset(new node(g, [=, &err](const continue_msg &) {
                        const tb_stamp *inputs[TB_MAX_DEPS];
                        for (uint32_t k = 0; k < deps.n; k++)
                            inputs[k] = &prev[deps.d[k]];
                        tb_task(pattern, width, t, p, inputs, deps.n, mine, err);
                        bench_work(rounds, (uint64_t)p + 1);
                    }));
                    node *n = nodes[t * width + p].get();
                    std::vector<char> pred(read_by[p]); // write after read
                    for (uint32_t k = 0; k < deps.n; k++) {
                        pred[deps.d[k]] = 1; // read after write
                        reading[deps.d[k]][p] = 1;
                    }
                    bool any = false;
                    for (long c = 0; c < width; c++)
                        if (pred[c]) {
                            make_edge(*nodes[(t - 1) * width + c], *n);
                            any = true;
                        }
                    if (!any)
                        roots.push_back(n);
                }
                std::swap(read_by, reading);
            }
            for (node *r : roots)
                r->try_put(continue_msg());
            g.wait_for_all();
        }
        wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        tb_check_final(pattern, width, steps, out.data(), err);
        if (tb_report(argv[1], err))
            return 1;
    }
    std::printf("%.9f\n", wall);
    return 0;
}
