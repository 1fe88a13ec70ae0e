"""How the learned speaker reward scores real text shaped like a generation.

    python benchmarks/text_speaker_openings.py

Generations after a "NAME:" prompt start with a newline and the start of a
speech; `train_speaker_reward`'s `speaker_score` is measured on chunks taken
from anywhere in a speech. This scores the held-out speeches' openings in the
generated form ("\\n" + the first 47 characters), for the speaker and for
everyone else, to see whether that difference explains why fine-tuned
policies score above real text. Seconds on 2 CPU cores.
"""

import numpy as np

from tfrl.text import load_corpus, train_speaker_reward
from tfrl.text.corpus import speeches


def main(speaker: str = "ROMEO") -> None:
    reward, metrics = train_speaker_reward(speaker)
    print("train_speaker_reward metrics:", metrics)
    pairs = speeches(load_corpus())
    for name, keep in ((speaker, True), ("others", False)):
        xs = [s for who, s in pairs if (who == speaker) == keep]
        held_out = xs[int(0.9 * len(xs)) :]  # the same 10% train_speaker_reward holds out
        openings = ["\n" + s[:47] for s in held_out]
        print(f"{name}: {len(held_out)} held-out speeches, openings score "
              f"{float(np.mean(reward(openings))):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
