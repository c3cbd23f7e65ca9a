// The same patterns with oneTBB's flow graph: one continue_node per task,
// an edge per dependency.
//   tbb_patterns PATTERN WIDTH STEPS ROUNDS   -> prints wall seconds of the
//       second of two runs (the first starts oneTBB's workers)
#include <oneapi/tbb/flow_graph.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

extern "C" {
#include "work.h"
}

using namespace oneapi::tbb::flow;

int main(int argc, char **argv)
{
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s PATTERN WIDTH STEPS ROUNDS\n", argv[0]);
        return 2;
    }
    const char *pattern = argv[1];
    long width = std::atol(argv[2]), steps = std::atol(argv[3]);
    unsigned long long rounds = std::strtoull(argv[4], nullptr, 10);
    bool stencil = !std::strcmp(pattern, "stencil"), chain = !std::strcmp(pattern, "chain");
    bool fan = !std::strcmp(pattern, "fan");
    // Two passes, the second timed: the first starts oneTBB's workers,
    // which simpler's worker has before its runs are timed.
    double wall = 0;
    for (int pass = 0; pass < 2; pass++) {
        auto t0 = std::chrono::steady_clock::now();
        if (fan) { // a root, width * steps - 2 children, a join of all
            graph g;
            long kids = width * steps > 2 ? width * steps - 2 : 0;
            auto body = [=](const continue_msg &) { bench_work(rounds, 0); };
            continue_node<continue_msg> root(g, body), join(g, body);
            std::vector<std::unique_ptr<continue_node<continue_msg>>> nodes;
            nodes.reserve(kids);
            for (long i = 0; i < kids; i++) {
                nodes.emplace_back(new continue_node<continue_msg>(g, body));
                make_edge(root, *nodes.back());
                make_edge(*nodes.back(), join);
            }
            root.try_put(continue_msg());
            g.wait_for_all();
        } else {
            graph g;
            std::vector<std::unique_ptr<continue_node<continue_msg>>> nodes;
            nodes.reserve(width * steps);
            std::vector<continue_node<continue_msg> *> roots;
            for (long s = 0; s < steps; s++)
                for (long i = 0; i < width; i++) {
                    nodes.emplace_back(new continue_node<continue_msg>(
                        g, [=](const continue_msg &) { bench_work(rounds, (uint64_t)i); }));
                    auto *n = nodes.back().get();
                    if (s == 0 || !(stencil || chain)) {
                        roots.push_back(n);
                        continue;
                    }
                    auto prev = [&](long j) { return nodes[(s - 1) * width + j].get(); };
                    if (stencil) {
                        for (long j = i - 1; j <= i + 1; j++)
                            if (j >= 0 && j < width)
                                make_edge(*prev(j), *n);
                    } else {
                        make_edge(*prev(i), *n);
                    }
                }
            for (auto *r : roots)
                r->try_put(continue_msg());
            g.wait_for_all();
        }
        wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::printf("%.9f\n", wall);
    return 0;
}
