"""The one home of the hand's topology: MediaPipe's 21 keypoints, fingers, parents, sides.

Every other module imports these names instead of spelling the indices out again (the idea
of smplx's ``joint_names.py``). Keypoint order is MediaPipe's: wrist; thumb CMC, MCP, IP, tip;
index MCP, PIP, DIP, tip; middle; ring; pinky (little finger).
"""

#: MediaPipe's 21 hand keypoints, in its order.
KEYPOINT_NAMES = ('wrist', 'thumb_cmc', 'thumb_mcp', 'thumb_ip', 'thumb_tip',
                  'index_mcp', 'index_pip', 'index_dip', 'index_tip',
                  'middle_mcp', 'middle_pip', 'middle_dip', 'middle_tip',
                  'ring_mcp', 'ring_pip', 'ring_dip', 'ring_tip',
                  'pinky_mcp', 'pinky_pip', 'pinky_dip', 'pinky_tip')
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
WRIST = 0

#: Finger names, thumb first (the order of :data:`FINGER_CHAINS`).
FINGER_NAMES = ('thumb', 'index', 'middle', 'ring', 'pinky')
#: Keypoints of each finger from its base (thumb CMC or finger MCP) to its tip.
FINGER_CHAINS = tuple(tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(len(FINGER_NAMES)))
#: (finger name, keypoint index of its tip).
FINGERTIPS = tuple((name, chain[-1]) for name, chain in zip(FINGER_NAMES, FINGER_CHAINS))
#: The MCP joints of the four fingers (the palm's distal edge).
PALM_MCPS = tuple(chain[0] for chain in FINGER_CHAINS[1:])
INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = PALM_MCPS

#: Parent of each keypoint in the kinematic tree (-1 for the wrist): every finger's base
#: hangs from the wrist, every other keypoint from the previous one of its finger.
KEYPOINT_PARENTS = (-1,) + tuple(WRIST if k == chain[0] else k - 1
                                 for chain in FINGER_CHAINS for k in chain)
#: The 20 bones of the keypoint tree as (parent, child) pairs, in child order.
BONE_PAIRS = tuple((KEYPOINT_PARENTS[k], k) for k in range(1, NUM_KEYPOINTS))
#: Keypoint pairs across the palm: neighbouring MCPs, index to little MCP, thumb CMC to
#: index MCP.
PALM_PAIRS = ((5, 9), (9, 13), (13, 17), (5, 17), (1, 5))
#: MediaPipe's drawing connections: the finger bones, the palm's MCP row and wrist -> little
#: MCP (the middle and ring MCPs connect through the row, not to the wrist).
HAND_CONNECTIONS = tuple(pair for pair in BONE_PAIRS if pair not in ((0, 9), (0, 13))) + (
    (5, 9), (9, 13), (13, 17))

#: Anatomical sides; the hand model's native side ('right') first.
SIDES = ('right', 'left')
