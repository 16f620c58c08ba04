import gc

from tracker import create_app

app = create_app()
# Everything loaded to start (modules, models, the app: some 180,000 objects) lives as long as the process. Frozen,
# the garbage collector's full collections stop walking all of it again: each took about 100 ms on a 2-CPU
# machine, a pause in the middle of someone's request, every few hundred requests.
gc.freeze()
