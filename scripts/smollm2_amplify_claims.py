"""The original's five amplify claims on SmolLM2-135M at a matched dose (0.3 nats).

The full-size design of `msma run` (32 Python Language Reference prompts, 16 other
calibration prompts, 2 sampled continuations of 64 tokens sharing seeds with the
baseline, a window of 3 hidden states per scale), amplify only, on the CKA scales of
docs/reproduction.md (0-2, 3-10, 11-30). About 4 minutes on 2 CPU cores.

Run:  HF_HUB_OFFLINE=1 python scripts/smollm2_amplify_claims.py
"""

import time

from msma_sklearn.datasets import load_reference_prose
from msma_sklearn.study import InterventionDesign, prompt_sets, run_intervention_study

t = time.time()
design = InterventionDesign(
    kinds=("scaling",), target_kl=(0.3,), primary_kl=0.3, dose_response_kinds=()
)
prompts, cal = prompt_sets(
    load_reference_prose().texts,
    design.n_prompts,
    design.n_calibration,
    design.prompt_words,
    random_state=0,
)
scales = {"local": [0, 1, 2], "intermediate": list(range(3, 11)), "global": list(range(11, 31))}
st = run_intervention_study("smollm2-135m", scales, prompts, cal, design, verbose=False)
d = st.to_dict()
print("seconds", round(time.time() - t))
print("power", d["power"])
print("baseline", d["baseline_fluency"])
for c in d["conditions"]:
    print(c["dose"], "ppl ratio", c["fluency_ppl_ratio"], "flagged", c["fluency_flagged"])
for c in d["claims"]:
    print(
        c["claim"],
        "|",
        c["verdict"],
        "|",
        c["reason"],
        "| measured",
        c["measured_percent"],
        c["ci"],
        "d_z",
        c["d_z"],
        "p_holm",
        c["p_holm"],
        "power",
        c["power"],
        "pairs",
        c["n_pairs"],
    )
f = st.effects_frame()
print(
    f[
        [
            "scale",
            "metric",
            "n_pairs",
            "defined_baseline",
            "defined_treated",
            "percent_change",
            "ci_low",
            "ci_high",
            "q_bh",
        ]
    ]
    .round(3)
    .to_string()
)
