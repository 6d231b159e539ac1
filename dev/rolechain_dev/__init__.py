"""rolechain's development tooling: the emulator, sam local orchestration and the demo.

Never shipped in the Lambda layer (a test checks the built layer) and never imported by the
``rolechain`` package.
"""
